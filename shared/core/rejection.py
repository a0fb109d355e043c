"""A rejection: one item that could not be judged, kept with its reason, origin and exact bytes.

Replay's `--rejected` file and the dead-letter container write the same line, so
an admin reads one format wherever a rejection ended up.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from .message import Origin


@dataclass(frozen=True, slots=True)
class Rejection:
    """One item that could not be judged. `index` is the record's place in its message, None for a whole message."""

    reason: str
    origin: Origin
    raw: bytes
    index: int | None = None

    def describe(self) -> str:
        where = self.origin.describe()
        if self.index is not None:
            where += f", record {self.index}"
        if self.reason.startswith("set aside: "):
            return f"set aside ({where}): {self.reason.removeprefix('set aside: ')}"
        return f"rejected ({where}): {self.reason}"


def rejection_line(rejection: Rejection) -> dict[str, Any]:
    """A rejected item as one JSON line: the reason, where it came from, and its raw bytes."""
    origin = rejection.origin
    record: dict[str, Any] = {
        "reason": rejection.reason,
        "source": origin.place,
        "partition": origin.partition,
        "offset": origin.offset,
        "sequence_number": origin.sequence_number,
        "record_index": rejection.index,
    }
    try:
        record["raw"] = rejection.raw.decode("utf-8")
    except UnicodeDecodeError:
        record["raw_base64"] = base64.b64encode(rejection.raw).decode()
    return record
