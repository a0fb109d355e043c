"""The delivery outbox and the circuit breakers in Azure Table Storage.

Table `{prefix}outbox`: PartitionKey the destination, RowKey the notification id,
flat properties for the due query, and the notification as zlib-compressed JSON
over binary properties. Table `{prefix}circuit`: one row per destination. Writes
are conditional, so two instances running the timer at once do not both send.

Both carry a schema version (`OUTBOX`, `CIRCUIT`). A notification a newer release
wrote is left to it: this release neither sends, lists nor expires it. A newer
breaker row is neither read nor overwritten: this release sends to that destination
as if its circuit were closed. Each case is one `schema_refused` log line.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, UpdateMode

from shared.core.alert import Notification
from shared.core.schema import SCHEMA, Refused, Schema
from shared.notify.breaker import BreakerState
from shared.notify.outbox import Entry

from .entity import open_table, pack_bytes, read_row, readable_rows, unpack_bytes

# Version 1: the rows as commit 1aa6fb3 wrote them (unmarked); fixtures in tests/storage/fixtures/schema1.
OUTBOX = Schema("outbox", 1)
CIRCUIT = Schema("circuit", 1)
LEFT = "left to the release that wrote it: not sent, listed or expired by this one"


class TableOutbox:
    """Azure Table Storage: table `{prefix}outbox` (PartitionKey destination, RowKey notification id)
    and `{prefix}circuit` (one row per destination)."""

    def __init__(self, service: TableServiceClient, prefix: str = "bindwatch") -> None:
        self._entries = open_table(service, f"{prefix}outbox")
        self._breakers = open_table(service, f"{prefix}circuit")
        self._newer_breakers: set[str] = set()  # destinations whose breaker row a newer release wrote

    def add(self, entry: Entry) -> bool:
        try:
            metadata = self._entries.create_entity(to_entity(entry))
        except ResourceExistsError:
            return False
        entry.etag = metadata.get("etag")
        return True

    def get(self, destination: str, entry_id: str) -> Entry | None:
        """The entry; Refused (after a log line) when a newer release wrote it."""
        try:
            row = self._entries.get_entity(destination, entry_id)
        except ResourceNotFoundError:
            return None
        return from_entity(read_row(OUTBOX, row, self._entries.table_name, LEFT))

    def due(self, now: float, limit: int = 100) -> list[Entry]:
        rows = self._entries.query_entities(
            "state eq @state and next_at le @now", parameters={"state": "pending", "now": float(now)}
        )
        readable = readable_rows(OUTBOX, rows, self._entries.table_name, LEFT)
        ready = [e for e in map(from_entity, readable) if e.lease_until <= now]
        return sorted(ready, key=lambda e: (e.next_at, e.created))[:limit]

    def claim(self, entry: Entry, until: float) -> Entry | None:
        claimed = replace(entry, lease_until=until)
        return claimed if self.save(claimed) else None

    def save(self, entry: Entry) -> bool:
        try:
            metadata = self._entries.update_entity(
                to_entity(entry),
                mode=UpdateMode.REPLACE,
                etag=entry.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        entry.etag = metadata.get("etag")
        return True

    def entries(self) -> Iterator[Entry]:
        yield from map(
            from_entity, readable_rows(OUTBOX, self._entries.list_entities(), self._entries.table_name, LEFT)
        )

    def expire(self, before: float) -> int:
        rows = self._entries.query_entities(
            "state ne @state and updated lt @before",
            parameters={"state": "pending", "before": float(before)},
            select=["PartitionKey", "RowKey", SCHEMA],
        )
        removed = 0
        for row in readable_rows(OUTBOX, rows, self._entries.table_name, LEFT):
            with contextlib.suppress(ResourceNotFoundError):
                self._entries.delete_entity(row["PartitionKey"], row["RowKey"])
                removed += 1
        return removed

    def load_breaker(self, destination: str) -> BreakerState:
        """The destination's breaker; closed when there is none, or when a newer release wrote it (not read)."""
        try:
            row = self._breakers.get_entity("circuit", destination)
            row = read_row(CIRCUIT, row, self._breakers.table_name, "treated as closed and never overwritten here")
        except ResourceNotFoundError:
            return BreakerState()
        except Refused:
            self._newer_breakers.add(destination)
            return BreakerState()
        self._newer_breakers.discard(destination)
        return BreakerState(int(row["failures"]), float(row["open_until"]), int(row["opened"]))

    def save_breaker(self, destination: str, state: BreakerState) -> None:
        if destination in self._newer_breakers:
            return  # a newer release's row: leave it as that release wrote it
        row = {"PartitionKey": "circuit", "RowKey": destination, "failures": state.failures}
        row.update(open_until=float(state.open_until), opened=state.opened)
        self._breakers.upsert_entity(CIRCUIT.mark(row), mode=UpdateMode.REPLACE)


def to_entity(entry: Entry) -> dict[str, Any]:
    """Flat properties for filtering, the notification as zlib-compressed JSON in ≤60 KB binary chunks."""
    packed = zlib.compress(orjson.dumps(entry.notification.to_dict(), default=str))
    row: dict[str, Any] = {
        "PartitionKey": entry.destination,
        "RowKey": entry.id,
        "state": entry.state,
        "attempts": entry.attempts,
        "created": float(entry.created),
        "next_at": float(entry.next_at),
        "lease_until": float(entry.lease_until),
        "done": orjson.dumps(entry.done).decode(),
        "http_status": entry.http_status if entry.http_status is not None else -1,
        "answer": entry.answer[:4000],
        "updated": float(entry.updated),
        **pack_bytes(packed, "body", "chunks"),
    }
    return OUTBOX.mark(row)


def from_entity(row: Any) -> Entry:
    """An entry from a row this release reads (callers check the schema first: `read_row`, `readable_rows`)."""
    packed = unpack_bytes(row, "body", "chunks")
    status = int(row["http_status"])
    return Entry(
        destination=row["PartitionKey"],
        notification=Notification.from_dict(orjson.loads(zlib.decompress(packed))),
        created=float(row["created"]),
        next_at=float(row["next_at"]),
        state=row["state"],
        attempts=int(row["attempts"]),
        done=list(orjson.loads(row["done"])),
        lease_until=float(row["lease_until"]),
        http_status=None if status < 0 else status,
        answer=row["answer"],
        updated=float(row["updated"]),
        etag=row.metadata.get("etag"),
    )
