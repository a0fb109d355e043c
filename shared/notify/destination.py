"""The destination interface: one small notifier per receiver behind one Protocol.

Modelled on Alertmanager's `notify/`: a notifier only turns a notification into
requests (pure, so cards and payloads are tested without a network) and judges
its destination's answer; sending is the transport's (`transport.py`) and retrying
a separate stage (`delivery.py`). URLs, routing keys and secrets stay inside the
notifier: nothing here logs, and the destination's answer is redacted before anyone
else sees it. Each destination is one module (`teams.py`, `webhook.py`,
`pagerduty.py`) listed once in `registry.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol
from urllib.parse import parse_qsl, urlsplit

from shared.core.alert import Notification

Outcome = Literal["delivered", "retry", "failed"]
ANSWER_CHARS = 500


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


class Redactor:
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
