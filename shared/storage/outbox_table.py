"""The delivery outbox and the circuit breakers in Azure Table Storage.

Table `{prefix}outbox`: PartitionKey the destination, RowKey the notification id,
flat properties for the due query, and the notification as zlib-compressed JSON
over binary properties. Table `{prefix}circuit`: one row per destination. Writes
are conditional, so two instances running the timer at once do not both send.
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
from shared.notify.breaker import BreakerState
from shared.notify.outbox import Entry

from .entity import open_table, pack_bytes, unpack_bytes


class TableOutbox:
    """Azure Table Storage: table `{prefix}outbox` (PartitionKey destination, RowKey notification id)
    and `{prefix}circuit` (one row per destination)."""

    def __init__(self, service: TableServiceClient, prefix: str = "bindwatch") -> None:
        self._entries = open_table(service, f"{prefix}outbox")
        self._breakers = open_table(service, f"{prefix}circuit")

    def add(self, entry: Entry) -> bool:
        try:
            metadata = self._entries.create_entity(to_entity(entry))
        except ResourceExistsError:
            return False
        entry.etag = metadata.get("etag")
        return True

    def get(self, destination: str, entry_id: str) -> Entry | None:
        try:
            return from_entity(self._entries.get_entity(destination, entry_id))
        except ResourceNotFoundError:
            return None

    def due(self, now: float, limit: int = 100) -> list[Entry]:
        rows = self._entries.query_entities(
            "state eq @state and next_at le @now", parameters={"state": "pending", "now": float(now)}
        )
        ready = [e for e in map(from_entity, rows) if e.lease_until <= now]
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
        yield from map(from_entity, self._entries.list_entities())

    def expire(self, before: float) -> int:
        rows = self._entries.query_entities(
            "state ne @state and updated lt @before",
            parameters={"state": "pending", "before": float(before)},
            select=["PartitionKey", "RowKey"],
        )
        removed = 0
        for row in rows:
            with contextlib.suppress(ResourceNotFoundError):
                self._entries.delete_entity(row["PartitionKey"], row["RowKey"])
                removed += 1
        return removed

    def load_breaker(self, destination: str) -> BreakerState:
        try:
            row = self._breakers.get_entity("circuit", destination)
        except ResourceNotFoundError:
            return BreakerState()
        return BreakerState(int(row["failures"]), float(row["open_until"]), int(row["opened"]))

    def save_breaker(self, destination: str, state: BreakerState) -> None:
        row = {"PartitionKey": "circuit", "RowKey": destination, "failures": state.failures}
        row.update(open_until=float(state.open_until), opened=state.opened)
        self._breakers.upsert_entity(row, mode=UpdateMode.REPLACE)


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
    return row


def from_entity(row: Any) -> Entry:
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
