"""The dead-letter trail: what could not be judged (or processed at all) is kept, never dropped.

Event Hubs has no dead-letter queue and the checkpoint moves on whether or not the
function succeeds, so anything not judged must land in a dead letter or a log.
This is the interface and the line format, both ways (a re-drive reads the lines
back with `read_dead_letter_line`); the blob container is in
`shared.storage.deadletter_blob`. Each line carries its schema version
(`DEAD_LETTERS`); a line from a newer release is refused, never misread.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from shared.core.message import Message, Origin
from shared.core.rejection import Rejection, rejection_line
from shared.core.schema import Schema
from shared.core.timestamp import iso, parse_time

# Version 1: the lines as commit 1aa6fb3 wrote them (unmarked); fixture in tests/storage/fixtures/schema1.
DEAD_LETTERS = Schema("deadletter", 1)


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
    return DEAD_LETTERS.mark(line)


def read_dead_letter_line(line: Mapping[str, Any]) -> Rejection:
    """The rejection a dead-letter line keeps, exact bytes included. `Refused` (a ValueError) for a line of a newer
    release; ValueError for anything that is not a dead-letter line."""
    line = DEAD_LETTERS.read(dict(line))
    try:
        sequence, index = line.get("sequence_number"), line.get("record_index")
        origin = Origin(
            source=str(line.get("source") or ""),
            partition=_text(line.get("partition")),
            offset=_text(line.get("offset")),
            sequence_number=None if sequence is None else int(sequence),
            enqueued_time=parse_time(line.get("enqueued_time")),
        )
        raw = base64.b64decode(line["raw_base64"], validate=True)
        return Rejection(str(line["reason"]), origin, raw, None if index is None else int(index))
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a dead-letter line: {type(error).__name__}") from None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def as_rejections(messages: Sequence[Message], reason: str) -> list[Rejection]:
    """Whole messages the function could not process (the store kept failing): keep them to re-drive."""
    return [Rejection(reason, message.origin, bytes(message.body)) for message in messages]
