"""A message: one Event Hub event body, or one item of an input file, and where it came from.

Where it came from travels with it to the end, so anything rejected can be found
again: partition, offset and sequence number for Event Hubs, file and line for replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a message came from: a file and line for replay, partition and offsets for Event Hub."""

    source: str = ""
    partition: str | None = None
    offset: str | None = None
    sequence_number: int | None = None
    enqueued_time: float | None = None
    line: int | None = None

    @property
    def place(self) -> str:
        """The source with its line, as people look it up: `export.json:1204`."""
        return f"{self.source}:{self.line}" if self.line is not None else self.source

    def describe(self) -> str:
        parts = [self.place] if self.place else []
        if self.partition is not None:
            parts.append(f"partition {self.partition}")
        if self.offset is not None:
            parts.append(f"offset {self.offset}")
        if self.sequence_number is not None:
            parts.append(f"sequence {self.sequence_number}")
        return ", ".join(parts) or "unknown source"


class _NotDecoded:
    """The marker for 'the reader did not decode this body' (JSON null is a document too)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_DECODED"


NOT_DECODED: Any = _NotDecoded()


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A message's document when its reader already knows it cannot be judged, and why (it is rejected so)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Message:
    """`body` is always the original bytes (what a rejection keeps).

    `shape` is the reader's hint of what the body holds (see `record.Shape`), which picks the fast
    decoder; `document` is the body already decoded by a reader that had to decode it to find where
    it ends (a streamed JSON array) or that built it (a CSV row), so it is not decoded twice.
    """

    body: bytes
    origin: Origin = Origin()
    shape: str | None = None
    document: Any = NOT_DECODED
