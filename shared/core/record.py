"""Reading sign-in records out of whatever holds them.

An Event Hub body is `{"records": [...]}` and may mix categories; exports hold the same
sign-ins in other envelopes (a storage-archive line is one record, a Graph page is
`{"value": [...]}`, a download is a JSON array, a Log Analytics answer is `{"tables": ...}`)
and in other record shapes (a resource-log record with `properties`, a Graph `signIn`
object, a Log Analytics row). Every record is recognised by what it holds and read into
the one narrow shape the judge reads. Everything that cannot be judged is either skipped
(another category, counted by name) or rejected (with the reason, the raw bytes and where
it came from), never silently dropped and never allowed to stop the rest of the batch.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from . import log_analytics
from .category import AUDIT_LOGS, JUDGED_CATEGORIES, MISSING_CATEGORY, by_content, named
from .message import NOT_DECODED, Message, Origin, Unreadable
from .policy_change import PolicyChange, Skip, read_change
from .rejection import Rejection
from .split import split_records

__all__ = [
    "EXPECTED_SHAPES",
    "JUDGED_CATEGORIES",
    "MISSING_CATEGORY",
    "Accepted",
    "Reading",
    "Shape",
    "decode",
    "read_message",
    "shape_of",
]


class Shape:
    """What a message holds, as readers name it (`Message.shape`) and `--input-format` forces it."""

    EVENT_HUB = "eventhub"  # {"records": [...]}: an Event Hub body (or an archive blob before Nov 2018)
    ARCHIVE = "archive"  # one resource-log record: a line of a storage-archive blob
    GRAPH = "graph"  # one Graph signIn object: a download, `pull`, Graph exporters
    GRAPH_PAGE = "graph-page"  # {"value": [...], "@odata.nextLink": ...}
    LOG_ANALYTICS = "log-analytics"  # one row of SigninLogs / AADNonInteractiveUserSignInLogs
    LOG_ANALYTICS_API = "log-analytics-api"  # {"tables": [{"columns": [...], "rows": [...]}]}
    UNKNOWN = "unknown"


NO_RECORDS = "message has no 'records' list and is not one sign-in record"
NO_SHAPE = "record is of no known shape (no 'properties', no Log Analytics columns, no signIn 'id')"

# The shapes people are told about when their input is mostly rejected.
EXPECTED_SHAPES = (
    'Event Hub message bodies {"records": [...]}, one per line or per file',
    "storage-archive blobs of a diagnostic setting (PT1H.json: one record per line)",
    "the Entra portal's JSON download or a Graph export (a JSON array of signIn objects, or one per line)",
    'Microsoft Graph pages {"value": [...]}',
    "Log Analytics / Sentinel rows of SigninLogs or AADNonInteractiveUserSignInLogs (JSON or the portal's CSV)",
    "any of these gzip-compressed",
)


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


class SignInObject(Properties, gc=False):
    """A Graph signIn object: the same fields, plus what tells its category (it names none)."""

    signInEventTypes: Any = None
    isInteractive: Any = None
    servicePrincipalId: Any = None


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
_FAST_RECORD = msgspec.json.Decoder(Record)
_FAST_OBJECT = msgspec.json.Decoder(SignInObject)


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
    changes: list[PolicyChange] = field(default_factory=list)  # token protection policy changes (AuditLogs)


def decode(body: bytes) -> Any:
    """orjson first for speed; the standard library as a fallback for JSON orjson refuses (huge integers)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def read_message(message: Message, reading: Reading | None = None) -> Reading:
    """Split one message into accepted records, skipped counts and rejections.

    The fast path for the message's shape decodes the narrow schema; anything it cannot take as it is
    (drifted types, broken records, other shapes, rejections that need their raw bytes) goes through the
    lenient path on the plain JSON. A message its reader already decoded goes to the lenient path directly.
    """
    reading = reading if reading is not None else Reading()
    if isinstance(message.document, Unreadable):
        reading.rejections.append(Rejection(message.document.reason, message.origin, bytes(message.body)))
    elif message.document is not NOT_DECODED:
        _read_document(message.document, message, reading)
    elif not _FAST_PATHS.get(message.shape, _read_fast)(message, reading):
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
        category = named(record.category if record.category is not None else record.Category)
        if category is None:
            return False  # judged by its content: the lenient path reads it
        judged = JUDGED_CATEGORIES.get(category.lower())
        if judged is None and category.lower() == AUDIT_LOGS:
            return False  # rare (a few a day) and read whole: the lenient path reads policy changes
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


def _read_fast_record(message: Message, reading: Reading) -> bool:
    """One resource-log record (a storage-archive line)."""
    try:
        record = _FAST_RECORD.decode(message.body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return False
    category = named(record.category if record.category is not None else record.Category)
    properties = record.properties
    if category is None or type(properties) is not Properties or not _is_id(properties.id):
        return False
    if category.lower() == AUDIT_LOGS:
        return False
    _accept(reading, record, properties, category)
    return True


def _read_fast_object(message: Message, reading: Reading) -> bool:
    """One Graph signIn object (a line written by `pull`, or of a Graph export)."""
    try:
        signin = _FAST_OBJECT.decode(message.body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return False
    if not _is_id(signin.id):
        return False
    category = by_content(lambda name: getattr(signin, name, None))
    _accept(reading, Record(properties=signin), signin, category)
    return True


_FAST_PATHS: dict[str | None, Callable[[Message, Reading], bool]] = {
    Shape.ARCHIVE: _read_fast_record,
    Shape.GRAPH: _read_fast_object,
}


def _accept(reading: Reading, record: Record, properties: Properties, category: str) -> None:
    judged = JUDGED_CATEGORIES.get(category.lower())
    if judged is None:
        reading.skipped[category] += 1
    else:
        reading.accepted.append(Accepted(record, properties, judged))


def _read_lenient(message: Message, reading: Reading) -> None:
    try:
        document = decode(message.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        _read_split(message, reading)
        return
    _read_document(document, message, reading)


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
        _read_record(record, index, message.origin, reading, raw)


def _read_document(document: Any, message: Message, reading: Reading) -> None:
    """Any envelope: a body's records, a Graph page's value, a Log Analytics answer, an array, or one record."""
    origin = message.origin
    if isinstance(document, list):
        records: Any = document
    elif not isinstance(document, dict):
        reading.rejections.append(Rejection("message is not a JSON object", origin, bytes(message.body)))
        return
    elif "records" in document:
        records = document["records"]
        if not isinstance(records, list):
            reading.rejections.append(Rejection("message has no 'records' list", origin, bytes(message.body)))
            return
    elif isinstance(document.get("value"), list):
        records = document["value"]
    elif isinstance(document.get("tables"), list):
        records = _table_rows(document["tables"])
    else:
        _read_record(document, None, origin, reading, message.body)
        return
    for index, record in enumerate(records):
        _read_record(record, index, origin, reading)


def _table_rows(tables: list[Any]) -> list[Any]:
    """The Log Analytics query API's tables as row objects (a row that does not fit stays as it is, to reject)."""
    rows: list[Any] = []
    for table in tables:
        if not isinstance(table, dict) or not isinstance(table.get("rows"), list):
            rows.append(table)
            continue
        columns = table.get("columns")
        names = [c.get("name") if isinstance(c, dict) else None for c in columns] if isinstance(columns, list) else []
        for row in table["rows"]:
            fits = isinstance(row, list) and len(row) == len(names) and all(isinstance(n, str) for n in names)
            rows.append(dict(zip(names, row, strict=True)) if fits else row)
    return rows


def _read_record(record: Any, index: int | None, origin: Origin, reading: Reading, raw: bytes | None = None) -> None:
    if not isinstance(record, dict):
        reading.rejections.append(Rejection("record is not a JSON object", origin, _raw(record, raw), index))
        return
    if "properties" in record or "category" in record:
        category = named(record.get("category") if record.get("category") is not None else record.get("Category"))
        if category is not None and category.lower() == AUDIT_LOGS:
            _read_audit(record, category, reading)
            return
        properties = record.get("properties")
        if isinstance(properties, str):
            # Seen for activity logs: properties as an escaped JSON string.
            try:
                properties = orjson.loads(properties)
            except orjson.JSONDecodeError:
                properties = None
        top = record
    elif log_analytics.is_row(record):
        top, properties, category = log_analytics.normalise(record)
    elif "id" in record:
        top, properties, category = {}, record, None
    else:
        reason = NO_RECORDS if index is None else NO_SHAPE
        reading.rejections.append(Rejection(reason, origin, _raw(record, raw), index))
        return
    _read_signin(top, properties, category, (origin, index, _raw(record, raw)), reading)


def _read_audit(record: dict[str, Any], category: str, reading: Reading) -> None:
    """A token protection policy change is kept; every other audit record is skipped, counted as before."""
    try:
        reading.changes.append(read_change(record))
    except Skip:
        reading.skipped[category] += 1


def _read_signin(
    top: dict[str, Any],
    properties: Any,
    category: str | None,
    where: tuple[Origin, int | None, bytes],
    reading: Reading,
) -> None:
    origin, index, raw = where
    if category is None and isinstance(properties, dict):
        category = by_content(properties.get)
    judged = JUDGED_CATEGORIES.get(category.lower()) if category else None
    if category is not None and judged is None:
        reading.skipped[category] += 1
        return
    if not isinstance(properties, dict):
        reading.rejections.append(Rejection("record has no 'properties' object", origin, raw, index))
        return
    if not _is_id(properties.get("id")):
        reading.rejections.append(Rejection("record has no 'properties.id'", origin, raw, index))
        return
    narrow = _narrow(top, properties)
    if narrow is None or judged is None:
        reading.rejections.append(Rejection("record could not be read", origin, raw, index))
        return
    reading.accepted.append(Accepted(narrow, narrow.properties, judged, index or 0))  # type: ignore[arg-type]


def _narrow(record: dict[str, Any], properties: dict[str, Any]) -> Record | None:
    """The lenient path's record in the fast path's shape: junk policies and devices are dropped, not fatal."""
    cleaned = {name: properties[name] for name in _PROPERTY_NAMES if name in properties}
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


_PROPERTY_NAMES = Properties.__struct_fields__


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _raw(value: Any, raw: bytes | None = None) -> bytes:
    """The original bytes when the item is the whole message; else the record as JSON (it came from JSON)."""
    if raw is not None:
        return bytes(raw)
    try:
        return orjson.dumps(value)
    except TypeError:
        return repr(value).encode()


def shape_of(document: Any) -> str:
    """What a decoded document is, by the same tests the reader applies (an array: its first element)."""
    if isinstance(document, list):
        return shape_of(document[0]) if document else Shape.UNKNOWN
    if not isinstance(document, dict):
        return Shape.UNKNOWN
    for shape, holds in _SHAPE_TESTS:
        if holds(document):
            return shape
    return Shape.UNKNOWN


_SHAPE_TESTS: tuple[tuple[str, Callable[[dict[str, Any]], bool]], ...] = (
    (Shape.EVENT_HUB, lambda d: "records" in d),
    (Shape.GRAPH_PAGE, lambda d: isinstance(d.get("value"), list)),
    (Shape.LOG_ANALYTICS_API, lambda d: isinstance(d.get("tables"), list)),
    (Shape.ARCHIVE, lambda d: "properties" in d or "category" in d),
    (Shape.LOG_ANALYTICS, log_analytics.is_row),
    (Shape.GRAPH, lambda d: "id" in d),
)
