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
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.data.tables import TableClient, TableServiceClient

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
