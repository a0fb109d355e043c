"""A message: one Event Hub event body (or one line of a file), and where it came from.

Where it came from travels with it to the end, so anything rejected can be found
again: partition, offset and sequence number for Event Hubs, file and line for replay.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a message came from: a file line for replay, partition and offsets for Event Hub."""

    source: str = ""
    partition: str | None = None
    offset: str | None = None
    sequence_number: int | None = None
    enqueued_time: float | None = None

    def describe(self) -> str:
        parts = [self.source] if self.source else []
        if self.partition is not None:
            parts.append(f"partition {self.partition}")
        if self.offset is not None:
            parts.append(f"offset {self.offset}")
        if self.sequence_number is not None:
            parts.append(f"sequence {self.sequence_number}")
        return ", ".join(parts) or "unknown source"


@dataclass(frozen=True, slots=True)
class Message:
    body: bytes
    origin: Origin = Origin()
