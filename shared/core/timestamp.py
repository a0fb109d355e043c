"""Event time as it is written in the logs and as bindwatch writes it back.

Entra writes ISO 8601 with seven fractional digits, an offset or none. Exports add
US-style dates: `11/14/2025 1:48:53 AM` (the stream's `time`), `01/09/2007 09:41:00`
(24-hour, no marker), `1/9/2007 10:41:00 AM +01:00` (with an offset) and Log Analytics'
CSV export `6/3/2025, 2:07:12.441 PM`. Slashed dates are month first, as Microsoft's
portals write them. bindwatch writes ISO 8601 UTC with milliseconds everywhere.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

EARLIEST = datetime(1971, 1, 1, tzinfo=UTC).timestamp()
LATEST = datetime(9998, 12, 31, tzinfo=UTC).timestamp()

# month/day/year[,] hour:minute[:second[.fraction]] [AM|PM] [Z|UTC|+hh:mm|-hhmm]
_SLASHED = re.compile(
    r"(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4}),?\s+"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?"
    r"\s*(?P<half>[AaPp][Mm])?"
    r"\s*(?P<zone>Z|UTC|GMT|[+-]\d{2}:?\d{2})?\s*",
)


def event_time(created: Any, fallback_record_time: Any, fallback: float) -> float:
    """createdDateTime first, then the record's processing `time`, then the caller's fallback."""
    for value in (created, fallback_record_time):
        parsed = parse_time(value)
        if parsed is not None:
            return parsed
    return fallback


def parse_time(value: Any) -> float | None:
    """ISO 8601 (any fraction, Z or offset) or a slashed month-first date; naive means UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = _slashed(value.strip())
        if parsed is None:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    seconds = parsed.timestamp()
    # Years 1 and 9999 parse but cannot be written back out (iso() would fail): not a usable event time.
    return seconds if EARLIEST <= seconds <= LATEST else None


def _slashed(text: str) -> datetime | None:
    match = _SLASHED.fullmatch(text)
    if match is None:
        return None
    hour = int(match["hour"])
    half = (match["half"] or "").upper()
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "PM" else 0)
    fraction = (match["fraction"] or "0")[:6].ljust(6, "0")
    try:
        return datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            hour,
            int(match["minute"]),
            int(match["second"] or 0),
            int(fraction),
            tzinfo=_zone(match["zone"]),
        )
    except ValueError:
        return None


def _zone(text: str | None) -> timezone:
    if not text or text in ("Z", "UTC", "GMT"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def iso(seconds: float) -> str:
    """Event times go out as ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
