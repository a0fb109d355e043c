"""The dead-letter trail: what could not be judged (or processed at all) is kept, never dropped.

Event Hubs has no dead-letter queue and the checkpoint moves on whether or not the
function succeeds, so anything not judged must land in a dead letter or a log.
This is the interface and the line format; the blob container is in
`shared.storage.deadletter_blob`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Protocol

from shared.core.message import Message
from shared.core.rejection import Rejection, rejection_line
from shared.core.timestamp import iso


class DeadLetter(Protocol):
    def write(self, rejections: Sequence[Rejection]) -> str | None:
        """Keep these rejections; return where (None when there were none)."""
        ...


def dead_letter_line(rejection: Rejection) -> dict[str, Any]:
    """The replay `--rejected` line, plus the enqueued time and always the exact bytes in base64."""
    line = rejection_line(rejection)
    enqueued = rejection.origin.enqueued_time
    line["enqueued_time"] = iso(enqueued) if enqueued is not None else None
    line["raw_base64"] = base64.b64encode(rejection.raw).decode()
    return line


def as_rejections(messages: Sequence[Message], reason: str) -> list[Rejection]:
    """Whole messages the function could not process (the store kept failing): keep them to re-drive."""
    return [Rejection(reason, message.origin, bytes(message.body)) for message in messages]
