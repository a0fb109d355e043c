"""The network edge: one POST per call, no redirects followed, every error turned into an Answer (never raised)."""

from __future__ import annotations

import logging

import httpx

from .destination import ANSWER_CHARS, Answer, Outgoing

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


def quiet_http_logs() -> None:
    """httpx logs every request's full URL at INFO, and webhook URLs carry their signature: keep it to warnings."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


class HttpTransport:
    """The network edge: one POST, no redirects followed, every error turned into an Answer (never raised)."""

    def __init__(self, client: httpx.Client | None = None, timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> None:
        quiet_http_logs()
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)

    def send(self, outgoing: Outgoing) -> Answer:
        try:
            response = self._client.post(outgoing.url, content=outgoing.body, headers=outgoing.headers)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as error:
            return Answer(status=None, error=type(error).__name__, fatal=True)
        except httpx.HTTPError as error:
            return Answer(status=None, error=type(error).__name__)
        return Answer(
            status=response.status_code,
            text=response.text[:ANSWER_CHARS],
            retry_after=response.headers.get("retry-after"),
        )

    def close(self) -> None:
        self._client.close()
