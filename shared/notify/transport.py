"""The network edge: one POST per call, bounded in time and in what it reads; every error an Answer, never raised.

A destination is outside our control: it may answer with a gigabyte, or trickle one
byte every ten seconds so no single read ever times out. So each request has a total
deadline (connect to last byte, enforced by cancelling it), and at most REPLY_BYTES of
any reply are read; the rest is never downloaded.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from .destination import ANSWER_CHARS, Answer, Outgoing

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)  # per network operation
DEADLINE = 30.0  # seconds for a whole request: well under the outbox lease, so no second sender starts meanwhile
REPLY_BYTES = 4096  # of any reply: enough for an error message, never a destination's whole answer


def quiet_http_logs() -> None:
    """httpx logs every request's full URL at INFO, and webhook URLs carry their signature: keep it to warnings."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


class HttpTransport:
    """One POST, no redirects followed, a total deadline, a bounded read."""

    def __init__(self, timeout: httpx.Timeout = DEFAULT_TIMEOUT, deadline: float = DEADLINE) -> None:
        quiet_http_logs()
        self.timeout = timeout
        self.deadline = deadline

    def send(self, outgoing: Outgoing, deadline: float | None = None) -> Answer:
        """Send within `deadline` seconds (the transport's own when None); the answer says what came back."""
        limit = self.deadline if deadline is None else max(0.001, min(deadline, self.deadline))
        return asyncio.run(self._send(outgoing, limit))

    async def _send(self, outgoing: Outgoing, deadline: float) -> Answer:
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
                async with asyncio.timeout(deadline):
                    return await _post(client, outgoing)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as error:
            return Answer(status=None, error=type(error).__name__, fatal=True)
        except httpx.HTTPError as error:
            return Answer(status=None, error=type(error).__name__)
        except TimeoutError:
            return Answer(status=None, error=f"no complete answer within {deadline:g} s")

    def close(self) -> None:
        """Nothing is held between requests (each has its own connection, bounded by its deadline)."""


async def _post(client: httpx.AsyncClient, outgoing: Outgoing) -> Answer:
    headers = {"accept-encoding": "identity", **outgoing.headers}  # a compressed reply could expand without bound
    async with client.stream("POST", outgoing.url, content=outgoing.body, headers=headers) as response:
        received = bytearray()
        async for chunk in response.aiter_raw():
            received += chunk
            if len(received) >= REPLY_BYTES:
                break
        text = bytes(received[:REPLY_BYTES]).decode(response.encoding or "utf-8", errors="replace")
        return Answer(
            status=response.status_code,
            text=text[:ANSWER_CHARS],
            retry_after=response.headers.get("retry-after"),
        )
