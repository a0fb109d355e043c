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

import msgspec
import orjson

from .message import Message, Origin
from .rejection import Rejection
from .split import split_records

# Lower-cased category -> the name Entra uses. Only user sign-ins carry a token protection story.
JUDGED_CATEGORIES = {
    "signinlogs": "SignInLogs",
    "noninteractiveusersigninlogs": "NonInteractiveUserSignInLogs",
}
MISSING_CATEGORY = "(missing)"


class Policy(msgspec.Struct, gc=False):
    """The four fields of a Conditional Access policy entry the rules read; the rest is skipped unread."""

    displayName: Any = None
    enforcedSessionControls: Any = None
    sessionControlsNotSatisfied: Any = None
    result: Any = None


class Device(msgspec.Struct, gc=False):
    deviceId: Any = None
    operatingSystem: Any = None
    trustType: Any = None
    browser: Any = None


class Properties(msgspec.Struct, gc=False):
    """The sign-in fields bindwatch uses. Values are `Any` because types drift; request.py normalises them."""

    id: Any = None
    correlationId: Any = None
    createdDateTime: Any = None
    userPrincipalName: Any = None
    userId: Any = None
    appDisplayName: Any = None
    appId: Any = None
    resourceDisplayName: Any = None
    resourceId: Any = None
    clientAppUsed: Any = None
    deviceDetail: Device | None = None
    tokenProtectionStatusDetails: Any = None
    appliedConditionalAccessPolicies: list[Policy] | None = None


class Record(msgspec.Struct, gc=False):
    category: Any = None
    Category: Any = None
    time: Any = None
    correlationId: Any = None
    properties: Properties | str | None = None


class Body(msgspec.Struct, gc=False):
    records: list[Record] | None = None


# A record is ~10 KB, mostly CA policies; decoding only the fields above skips the rest without building
# Python objects for it, which is what lets judging cost less than a plain json decode of the record.
_FAST = msgspec.json.Decoder(Body)


@dataclass(slots=True)
class Accepted:
    """A user sign-in record ready to be judged: its top level, its properties and its category."""

    record: Record
    properties: Properties
    category: str
    index: int = 0  # its place in its message's records (to find its raw JSON again if it must be set aside)


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
    """Split one message into accepted records, skipped counts and rejections.

    The fast path decodes the narrow schema; anything it cannot take as it is (drifted types, broken
    records, rejections that need their raw bytes) goes through the lenient path on the plain JSON.
    """
    reading = reading if reading is not None else Reading()
    if not _read_fast(message, reading):
        _read_lenient(message, reading)
    return reading


def _read_fast(message: Message, reading: Reading) -> bool:
    try:
        records = _FAST.decode(message.body).records
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return False
    if records is None:
        return False
    accepted: list[Accepted] = []
    skipped: Counter[str] = Counter()
    for index, record in enumerate(records):
        category = _category(record.category, record.Category)
        judged = JUDGED_CATEGORIES.get(category.lower())
        if judged is None:
            skipped[category] += 1
            continue
        properties = record.properties
        if type(properties) is not Properties or not _is_id(properties.id):
            return False  # a string or a broken record: the lenient path reads (or rejects) it with its raw bytes
        accepted.append(Accepted(record, properties, judged, index))
    reading.accepted.extend(accepted)
    reading.skipped.update(skipped)
    return True


def _read_lenient(message: Message, reading: Reading) -> None:
    try:
        document = decode(message.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        _read_split(message, reading)
        return
    records = document.get("records") if isinstance(document, dict) else None
    if not isinstance(records, list):
        reason = "message has no 'records' list" if isinstance(document, dict) else "message is not a JSON object"
        reading.rejections.append(Rejection(reason, message.origin, bytes(message.body)))
        return
    for index, record in enumerate(records):
        _read_record(record, index, message.origin, reading)


def _read_split(message: Message, reading: Reading) -> None:
    """The body as a whole is not JSON to any decoder: read its records one by one, so one record that cannot be
    decoded (nested thousands deep, a number of thousands of digits, not UTF-8) is the only one rejected."""
    spans = split_records(message.body)
    if spans is None:
        reading.rejections.append(Rejection("message is not JSON", message.origin, bytes(message.body)))
        return
    for index, raw in enumerate(spans):
        try:
            record = decode(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            reason = "record is not JSON any decoder reads (too deeply nested, a number too long, or not UTF-8)"
            reading.rejections.append(Rejection(reason, message.origin, raw, index))
            continue
        _read_record(record, index, message.origin, reading)


def _read_record(record: Any, index: int, origin: Origin, reading: Reading) -> None:
    if not isinstance(record, dict):
        reading.rejections.append(Rejection("record is not a JSON object", origin, _raw(record), index))
        return
    category = _category(record.get("category"), record.get("Category"))
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
    if not _is_id(properties.get("id")):
        reading.rejections.append(Rejection("record has no 'properties.id'", origin, _raw(record), index))
        return
    narrow = _narrow(record, properties)
    if narrow is None:
        reading.rejections.append(Rejection("record could not be read", origin, _raw(record), index))
        return
    reading.accepted.append(Accepted(narrow, narrow.properties, judged, index))  # type: ignore[arg-type]


def _narrow(record: dict[str, Any], properties: dict[str, Any]) -> Record | None:
    """The lenient path's record in the fast path's shape: junk policies and devices are dropped, not fatal."""
    cleaned = dict(properties)
    policies = cleaned.get("appliedConditionalAccessPolicies")
    cleaned["appliedConditionalAccessPolicies"] = (
        [p for p in policies if isinstance(p, dict)] if isinstance(policies, list) else None
    )
    if not isinstance(cleaned.get("deviceDetail"), dict):
        cleaned["deviceDetail"] = None
    try:
        return Record(
            category=record.get("category"),
            Category=record.get("Category"),
            time=record.get("time"),
            correlationId=record.get("correlationId"),
            properties=msgspec.convert(cleaned, Properties),
        )
    except (msgspec.ValidationError, TypeError, ValueError):
        return None


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _category(lower: Any, upper: Any) -> str:
    category = upper if lower is None else lower
    if isinstance(category, str) and category:
        return category
    return MISSING_CATEGORY


def _raw(value: Any) -> bytes:
    """The record as bytes for the dead-letter trail; it came from JSON, so it serialises back."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return repr(value).encode()
