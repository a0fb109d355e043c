"""Destinations: one small notifier per receiver behind one Protocol, and the HTTP edge that sends for them.

Modelled on Alertmanager's `notify/`: a notifier only turns a notification into
requests (pure, so cards and payloads are tested without a network) and judges
its destination's answer; retrying is a separate stage (`shared.delivery`). URLs,
routing keys and secrets stay inside the notifier: nothing here logs, and the
destination's answer is redacted before anyone else sees it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson

from . import card, pagerduty, webhook
from .alert import Notification
from .settings import Settings

Outcome = Literal["delivered", "retry", "failed"]
ANSWER_CHARS = 500
TEAMS, WEBHOOK, PAGERDUTY = "teams", "webhook", "pagerduty"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One HTTP POST; `part` names it within its notification so a retry skips the parts already accepted."""

    part: str
    url: str = field(repr=False)
    body: bytes = field(repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back: a status (None when the request never got one) and the start of the body."""

    status: int | None
    text: str = ""
    retry_after: str | None = None
    error: str = ""  # the exception's class name for network errors: never its message (it may hold the URL)
    fatal: bool = False  # the request cannot be made at all (a malformed URL): retrying cannot help


class Notifier(Protocol):
    name: str

    def requests(self, notification: Notification, now: float) -> list[Outgoing]:
        """Pure: the POSTs that deliver this notification, built at wall time `now` (signatures are dated)."""
        ...

    def judge(self, answer: Answer) -> Outcome:
        """Delivered, worth retrying, or failed for good."""
        ...

    def redact(self, text: str) -> str:
        """The text with every secret this notifier holds blanked out."""
        ...


def classify(answer: Answer) -> Outcome:
    """2xx delivered; network errors, 408, 429 and 5xx retried; anything else (3xx, 4xx) failed for good."""
    if answer.status is None:
        return "failed" if answer.fatal else "retry"
    if 200 <= answer.status < 300:
        return "delivered"
    if answer.status in (408, 429) or answer.status >= 500:
        return "retry"
    return "failed"


class _Secrets:
    """Shared redaction: the secrets themselves and, for URLs, their path and their long path segments and
    query values (the SAS `sig`, Slack-style `/services/T/B/<token>` paths), which answers often echo."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = set()
        for secret in secrets:
            values.add(secret)
            parts = urlsplit(secret)
            values.update(v for _, v in parse_qsl(parts.query) if len(v) >= 8)
            if len(parts.path) > 1:
                values.add(parts.path)
                values.update(segment for segment in parts.path.split("/") if len(segment) >= 8)
        self._pattern = re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True) if v))

    def redact(self, text: str) -> str:
        return self._pattern.sub("***", text) if self._pattern.pattern else text


class TeamsNotifier(_Secrets):
    """A Workflows 'When a Teams webhook request is received' URL; 2xx (usually 202) means the flow accepted it."""

    name = TEAMS

    def __init__(self, url: str, public_url: str | None = None) -> None:
        super().__init__([url])
        self._url = url  # no host check: these URLs have moved between domains before
        self._public_url = public_url

    def requests(self, notification: Notification, now: float) -> list[Outgoing]:
        body = orjson.dumps(card.message(notification, self._public_url))
        return [Outgoing("message", self._url, body, {"content-type": "application/json"})]

    def judge(self, answer: Answer) -> Outcome:
        """Legacy connectors answered a throttle with 200 and 'HTTP error 429' in the body: a retry, not a success."""
        if answer.status == 200 and "HTTP error 429" in answer.text:
            return "retry"
        return classify(answer)


class WebhookNotifier(_Secrets):
    """A signed (Standard Webhooks) JSON POST; webhook-id is the notification's id, the same on every retry."""

    name = WEBHOOK

    def __init__(self, url: str, secret: str | None = None, public_url: str | None = None) -> None:
        super().__init__([url] + ([secret] if secret else []))
        self._url = url
        self._key = webhook.secret_key(secret) if secret else None
        self._public_url = public_url

    def requests(self, notification: Notification, now: float) -> list[Outgoing]:
        body = webhook.body(notification, self._public_url)
        headers = webhook.headers(self._key, notification.id, int(now), body)
        return [Outgoing("message", self._url, body, headers)]

    def judge(self, answer: Answer) -> Outcome:
        return classify(answer)


class PagerDutyNotifier(_Secrets):
    """Events v2: one event per alert (trigger or resolve), dedup_key = the alert's fingerprint."""

    name = PAGERDUTY

    def __init__(self, routing_key: str, url: str = pagerduty.ENQUEUE_URL, public_url: str | None = None) -> None:
        super().__init__([routing_key])
        self._key = routing_key
        self._url = url
        self._public_url = public_url

    def requests(self, notification: Notification, now: float) -> list[Outgoing]:
        return [
            Outgoing(
                f"{index}:{alert.status}:{pagerduty.dedup_key(alert)}",
                self._url,
                orjson.dumps(pagerduty.event(alert, self._key, self._public_url)),
                {"content-type": "application/json"},
            )
            for index, alert in enumerate(notification.alerts)
        ]

    def judge(self, answer: Answer) -> Outcome:
        return classify(answer)


def notifiers_from_settings(settings: Settings) -> dict[str, Notifier]:
    """The configured destinations by name (teams, webhook, pagerduty); empty when none is set."""
    public = settings.public_url
    found: dict[str, Notifier] = {}
    if settings.teams_webhook_url is not None:
        found[TEAMS] = TeamsNotifier(settings.teams_webhook_url.get_secret_value(), public)
    if settings.webhook_url is not None:
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        found[WEBHOOK] = WebhookNotifier(settings.webhook_url.get_secret_value(), secret, public)
    if settings.pagerduty_routing_key is not None:
        key = settings.pagerduty_routing_key.get_secret_value()
        found[PAGERDUTY] = PagerDutyNotifier(key, settings.pagerduty_url, public)
    return found


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
