"""What every bindwatch table needs from Azure Table Storage, defined once.

- Large values (JSON text, compressed bytes) split over as many properties as
  they need, within the service's limits: a property holds at most 64 KiB, an
  entity at most 1 MiB.
- Tables created on first use, whoever gets there first.
- Conflicts told apart from failures: a conditional write that lost a race
  (404, 409, 412) is retried by re-reading; anything else fails the batch.
- Schema versions (`shared.core.schema`): a table declares its `Schema`, marks every entity it writes
  (`schema.mark(entity)`) and reads through `readable_rows` / `read_row`, which bring older rows up to date
  and leave a row from a newer release untouched, named in one log line.
- Entity group transactions written and read here (`submit`), not by the SDK's `submit_transaction`: the SDK
  builds and parses the multipart body with the standard library's `email` package, which cost more CPU than
  everything else the sign-in table does (profiled). The operations, their conditions and the errors raised
  are the SDK's own; the request still goes through the SDK's pipeline (authentication, retries).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote as url_quote

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.core.rest import HttpRequest
from azure.data.tables import RequestTooLargeError, TableClient, TableServiceClient, TableTransactionError, UpdateMode
from azure.data.tables._serialize import _add_entity_properties  # the SDK's own typing of property values

from shared.core.schema import Refused, Schema
from shared.core.text import utf16_units
from shared.telemetry import log_event

MAX_OPS = 100  # operations in one entity group transaction
TEXT_CHUNK = 30_000  # UTF-16 units per string property: 64 KiB of UTF-16 holds 32,768 (an emoji takes two)
BYTES_CHUNK = 60_000  # bytes per binary property (64 KiB)
MAX_CHUNKS = 14  # chunks per value: 14 x 60 KB stays under the 1 MiB an entity holds, with room for the rest
CONFLICT_STATUSES = frozenset({404, 409, 412})


class TooLarge(ValueError):
    """A value that cannot fit one entity."""


def pack_text(text: str, name: str = "d", count: str = "n") -> dict[str, Any]:
    """Text over properties `<name>0`, `<name>1`, ... with their number in `count`, each within the service's
    limit counted as the service counts it (UTF-16 units)."""
    parts = split_text(text, TEXT_CHUNK)
    if len(parts) > MAX_CHUNKS:
        raise TooLarge(f"{len(text)} characters do not fit one entity")
    return {count: len(parts), **{f"{name}{i}": part for i, part in enumerate(parts)}}


def split_text(text: str, units: int) -> list[str]:
    """Pieces of at most `units` UTF-16 units (at least 2: a character may take two), in order, never splitting
    a character."""
    if units < 2:
        raise ValueError("a piece must hold at least 2 UTF-16 units")
    if text.isascii():
        return [text[i : i + units] for i in range(0, len(text), units)] or [""]
    parts = []
    start = 0
    while start < len(text):
        end = min(start + units, len(text))
        while (excess := utf16_units(text[start:end]) - units) > 0:
            # A character is 1 or 2 units: dropping ceil(excess / 2) drops enough or comes close, and never the whole
            # piece (dropping `excess` could: a piece of astral characters then emptied, and looped forever).
            end = max(start + 1, end - (excess + 1) // 2)
        parts.append(text[start:end])
        start = end
    return parts or [""]


def unpack_text(entity: Any, name: str = "d", count: str = "n") -> str:
    return "".join(entity[f"{name}{i}"] for i in range(int(entity[count])))


def pack_bytes(data: bytes, name: str = "body", count: str = "chunks") -> dict[str, Any]:
    """Bytes over binary properties `<name>0`, `<name>1`, ... with their number in `count`."""
    parts = [data[i : i + BYTES_CHUNK] for i in range(0, len(data), BYTES_CHUNK)]
    if len(parts) > MAX_CHUNKS:
        raise TooLarge(f"{len(data)} bytes do not fit one entity")
    return {count: len(parts), **{f"{name}{i}": part for i, part in enumerate(parts)}}


def unpack_bytes(entity: Any, name: str = "body", count: str = "chunks") -> bytes:
    return b"".join(bytes(entity[f"{name}{i}"]) for i in range(int(entity[count])))


def open_table(service: TableServiceClient, name: str) -> TableClient:
    """The table, created if it is missing (another instance may create it at the same moment)."""
    with contextlib.suppress(ResourceExistsError):
        service.create_table(name)
    return service.get_table_client(name)


def is_conflict(error: Exception) -> bool:
    """Another writer got there first (the row exists, changed, or went): re-read and try again."""
    return isinstance(error, HttpResponseError) and error.status_code in CONFLICT_STATUSES


def etag_of(entity: Any) -> str | None:
    metadata = getattr(entity, "metadata", None) or {}
    return metadata.get("etag")


def quote(text: str) -> str:
    """A string literal for an OData filter."""
    return "'" + text.replace("'", "''") + "'"


def readable_rows(schema: Schema, rows: Iterable[Any], table: str, left: str) -> list[Any]:
    """The rows this release reads, older ones upgraded; rows of a newer release are left out and named in one
    log line that says what is left undone (`left`), so nothing is misread and nothing stops the batch."""
    kept: list[Any] = []
    refused: list[tuple[Any, Refused]] = []
    for row in rows:
        try:
            kept.append(schema.read(row))
        except Refused as error:
            refused.append((row, error))
    if refused:
        log_refused(schema, table, [row for row, _ in refused], left)
    return kept


def read_row(schema: Schema, row: Any, table: str, left: str) -> Any:
    """One row this release reads (upgraded); a row of a newer release is logged, then Refused is raised."""
    try:
        return schema.read(row)
    except Refused:
        log_refused(schema, table, [row], left)
        raise


def log_refused(schema: Schema, table: str, rows: list[Any], left: str) -> None:
    """One WARNING for rows this release will not read: how many, which versions, the first key, what is left."""
    first = rows[0]
    log_event(
        "schema_refused",
        logging.WARNING,
        table=table,
        rows=len(rows),
        schemas=sorted({repr(schema.version_of(row)) for row in rows}),
        known=schema.version,
        first=f"{first.get('PartitionKey', '')} {first.get('RowKey', '')}"[:300],
        left=left,
    )


# --- entity group transactions (the body and the answer are pure; `submit` is the I/O) ---

VERSION = "2019-02-02"  # the Table service API version azure-data-tables 12.7 speaks
_STATUS = re.compile(r"^HTTP/1\.[01] (\d{3})", re.M)
_ETAG = re.compile(r"^ETag:[ \t]*(.*?)\r?$", re.M | re.I)
_BOUNDARY = re.compile(r"boundary=([^\s;]+)")


def submit(table: TableClient, ops: Sequence[tuple[Any, ...]]) -> list[dict[str, str]]:
    """Commit `ops` (the SDK's `submit_transaction` tuples) as one transaction; each operation's ETag, in order.

    Raises TableTransactionError (with the failed operation's status, code and index) as the SDK does."""
    if not ops:
        return []
    endpoint = table.url.split("?", 1)[0].rstrip("/")
    boundary = f"batch_{uuid.uuid4()}"
    changeset = f"changeset_{uuid.uuid4()}"
    body = transaction_body(endpoint, table.table_name, ops, boundary, changeset, version=table.api_version)
    request = HttpRequest(
        "POST",
        f"{endpoint}/$batch",
        headers={
            "x-ms-version": table.api_version,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": f"multipart/mixed; boundary={boundary}",
            "Accept": "application/json",
        },
        content=body,
    )
    # The SDK's own pipeline (the client's policies: credential, retries), as its _batch_send uses it.
    # Streamed, as there: the client's content-decoding policy cannot read multipart (it reads it below).
    response = table._client.send_request(request, stream=True)
    response.read()
    if response.status_code == 413:
        raise RequestTooLargeError(message="The transaction request was too large", response=response)
    if response.status_code != 202:
        raise HttpResponseError(response=response)
    return transaction_results(response.text(), len(ops))


def transaction_body(
    endpoint: str, table: str, ops: Sequence[tuple[Any, ...]], boundary: str, changeset: str, *, version: str = VERSION
) -> bytes:
    """The multipart/mixed body of one changeset, as the service documents it (and the SDK sends it)."""
    out = [f"--{boundary}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n".encode()]
    for index, op in enumerate(ops):
        method, path, headers, payload = operation(table, op)
        lines = [
            f"--{changeset}",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            f"Content-ID: {index}",
            "",
            f"{method} {endpoint}/{path} HTTP/1.1",
            f"x-ms-version: {version}",
            "DataServiceVersion: 3.0",
            "Accept: application/json;odata=minimalmetadata",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        if payload is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        out.append(("\r\n".join(lines) + "\r\n\r\n").encode())
        if payload is not None:
            out.append(payload + b"\r\n")
    out.append(f"--{changeset}--\r\n--{boundary}--\r\n".encode())
    return b"".join(out)


def operation(table: str, op: tuple[Any, ...]) -> tuple[str, str, dict[str, str], bytes | None]:
    """One operation as method, path, conditions and JSON: the SDK's meanings of create, update, upsert, delete."""
    kind, entity = op[0], op[1]
    options: dict[str, Any] = dict(op[2]) if len(op) > 2 else {}
    keys = f"{table}(PartitionKey='{_key(entity['PartitionKey'])}',RowKey='{_key(entity['RowKey'])}')"
    if kind == "create":
        return "POST", table, {"Prefer": "return-no-content"}, entity_json(entity)
    if kind == "delete":
        return "DELETE", keys, {"If-Match": _if_match(options)}, None
    mode = options.get("mode", UpdateMode.MERGE)
    method = "PUT" if mode == UpdateMode.REPLACE else "PATCH"
    if kind == "update":  # only if the entity exists: If-Match its ETag, or any
        return method, keys, {"If-Match": _if_match(options)}, entity_json(entity)
    if kind == "upsert":  # insert or replace / merge: no condition
        return method, keys, {}, entity_json(entity)
    raise ValueError(f"Unrecognized operation: {kind}")


def _key(value: str) -> str:
    return url_quote(str(value).replace("'", "''"), safe="")


def _if_match(options: dict[str, Any]) -> str:
    condition = options.get("match_condition") or MatchConditions.Unconditionally
    if condition == MatchConditions.IfNotModified:
        if not options.get("etag"):
            raise ValueError("IfNotModified needs an etag")
        return str(options["etag"])
    if condition in (MatchConditions.Unconditionally, MatchConditions.IfPresent):
        return "*"
    raise ValueError(f"unsupported match condition in a transaction: {condition}")


_INT32 = range(-(2**31), 2**31)


def entity_json(entity: Any) -> bytes:
    """The entity as the SDK types it, encoded once; lone surrogates escaped as the SDK does.

    Strings, booleans, 32-bit integers and finite floats (annotated Edm.Double) are typed here, as the service
    reads them (a string needs no annotation); any other value is typed by the SDK's own function."""
    properties: dict[str, Any] = {}
    for name, value in entity.items():
        kind = type(value)
        if kind is str or kind is bool or (kind is int and value in _INT32):
            properties[name] = value
        elif kind is float and math.isfinite(value):
            properties[name] = value
            properties[f"{name}@odata.type"] = "Edm.Double"
        elif value is not None:
            properties = _add_entity_properties(entity)
            break
    try:
        return orjson.dumps(properties)
    except TypeError:
        return json.dumps(properties).encode()


def transaction_results(text: str, count: int) -> list[dict[str, str]]:
    """Each operation's ETag from the service's multipart answer; the first failed operation raised as the SDK
    raises it (TableTransactionError: status, error code, index from the service's "index:message")."""
    found = _BOUNDARY.search(text.split("\n\n", 1)[0].split("\r\n\r\n", 1)[0])
    if found is None:
        raise TableTransactionError(message=f"unreadable transaction answer: {text[:200]!r}")
    parts = text.split(f"--{found.group(1)}")[1:-1]
    results = []
    for part in parts:
        status = _STATUS.search(part)
        if status is None:
            raise TableTransactionError(message=f"unreadable transaction part: {part[:200]!r}")
        code = int(status.group(1))
        if not 200 <= code < 300:
            raise _failure(code, part[status.end() :])
        etag = _ETAG.search(part, status.end())
        results.append({"etag": etag.group(1)} if etag else {})
    if len(results) != count:
        raise TableTransactionError(message=f"{len(results)} answers to a transaction of {count} operations")
    return results


def _failure(status: int, rest: str) -> TableTransactionError:
    """The error of a failed operation, with what the SDK's would carry (status_code, error_code, index)."""
    start = rest.find("{")
    code, message = "", rest.strip()[:500]
    if start >= 0:
        with contextlib.suppress(ValueError):
            error = orjson.loads(rest[start : rest.rfind("}") + 1]).get("odata.error", {})
            code = str(error.get("code", ""))
            message = str((error.get("message") or {}).get("value", message))
    failure = TableTransactionError(message=message)
    failure.status_code, failure.error_code = status, code
    return failure
