"""Event time as it is written in the logs and as bindwatch writes it back.

Entra writes ISO 8601 with seven fractional digits, an offset or none, and in
places the US format `11/14/2025 1:48:53 AM`; bindwatch writes ISO 8601 UTC with
milliseconds everywhere (verdicts, alerts, payloads, pages).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

_US_FORMAT = "%m/%d/%Y %I:%M:%S %p"  # seen in real data: 11/14/2025 1:48:53 AM
EARLIEST = datetime(1971, 1, 1, tzinfo=UTC).timestamp()
LATEST = datetime(9998, 12, 31, tzinfo=UTC).timestamp()


def event_time(created: Any, fallback_record_time: Any, fallback: float) -> float:
    """createdDateTime first, then the record's processing `time`, then the caller's fallback."""
    for value in (created, fallback_record_time):
        parsed = parse_time(value)
        if parsed is not None:
            return parsed
    return fallback


def parse_time(value: Any) -> float | None:
    """ISO 8601 (7 fractional digits, Z or offset) or the US format seen in the stream; naive means UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.strptime(value.strip(), _US_FORMAT)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    seconds = parsed.timestamp()
    # Years 1 and 9999 parse but cannot be written back out (iso() would fail): not a usable event time.
    return seconds if EARLIEST <= seconds <= LATEST else None


def iso(seconds: float) -> str:
    """Event times go out as ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
