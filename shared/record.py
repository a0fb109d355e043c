"""Reading Event Hub message bodies into sign-in records.

A body is `{"records": [...]}` and may mix categories. Everything that cannot be
judged is either skipped (another category, counted by name) or rejected (with
the reason, the raw bytes and where it came from), never silently dropped and
never allowed to stop the rest of the batch.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

# Lower-cased category -> the name Entra uses. Only user sign-ins carry a token protection story.
JUDGED_CATEGORIES = {
    "signinlogs": "SignInLogs",
    "noninteractiveusersigninlogs": "NonInteractiveUserSignInLogs",
}
MISSING_CATEGORY = "(missing)"


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
        return f"rejected ({where}): {self.reason}"


@dataclass(slots=True)
class Accepted:
    """A user sign-in record ready to be judged: its top level, its properties and its category."""

    record: dict[str, Any]
    properties: dict[str, Any]
    category: str


@dataclass(slots=True)
class Reading:
    accepted: list[Accepted] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)


def decode(body: bytes) -> Any:
    """orjson first for speed; the standard library as a fallback for JSON orjson refuses (huge integers)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def read_message(message: Message, reading: Reading | None = None) -> Reading:
    """Split one message into accepted records, skipped counts and rejections."""
    reading = reading if reading is not None else Reading()
    try:
        document = decode(message.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        reading.rejections.append(Rejection("message is not JSON", message.origin, bytes(message.body)))
        return reading
    records = document.get("records") if isinstance(document, dict) else None
    if not isinstance(records, list):
        reason = "message has no 'records' list" if isinstance(document, dict) else "message is not a JSON object"
        reading.rejections.append(Rejection(reason, message.origin, bytes(message.body)))
        return reading
    for index, record in enumerate(records):
        _read_record(record, index, message.origin, reading)
    return reading


def _read_record(record: Any, index: int, origin: Origin, reading: Reading) -> None:
    if not isinstance(record, dict):
        reading.rejections.append(Rejection("record is not a JSON object", origin, _raw(record), index))
        return
    category = _category(record)
    judged = JUDGED_CATEGORIES.get(category.lower())
    if judged is None:
        reading.skipped[category] += 1
        return
    properties = record.get("properties")
    if isinstance(properties, str):
        # Seen for activity logs: properties as an escaped JSON string.
        try:
            properties = orjson.loads(properties)
        except orjson.JSONDecodeError:
            properties = None
    if not isinstance(properties, dict):
        reading.rejections.append(Rejection("record has no 'properties' object", origin, _raw(record), index))
        return
    request_id = properties.get("id")
    if not isinstance(request_id, str) or not request_id.strip():
        reading.rejections.append(Rejection("record has no 'properties.id'", origin, _raw(record), index))
        return
    reading.accepted.append(Accepted(record, properties, judged))


def _category(record: dict[str, Any]) -> str:
    category = record.get("category")
    if category is None:
        category = record.get("Category")
    if isinstance(category, str) and category:
        return category
    return MISSING_CATEGORY


def _raw(value: Any) -> bytes:
    """The record as bytes for the dead-letter trail; it came from JSON, so it serialises back."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return repr(value).encode()
