"""The durable outbox: every notification is written here before it is sent, and marked once a 2xx came back.

One interface, an in-memory and an Azure Table Storage implementation. An entry is
keyed by (destination, notification id) and never overwritten by a second `add`, so a
notification submitted again after a restart is not sent again once delivered. A
sender `claim`s an entry (ETag-conditioned) before sending, so two instances running
the timer at once do not both send it. The circuit-breaker state per destination
lives here too: it must survive instances as well.
"""

from __future__ import annotations

import contextlib
import copy
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from .alert import Notification

State = Literal["pending", "delivered", "failed"]
CHUNK = 60_000  # bytes per binary property (Table Storage allows 64 KiB)
MAX_CHUNKS = 15  # an entity holds at most 1 MiB


@dataclass(slots=True)
class Entry:
    """One notification to one destination and where its delivery stands."""

    destination: str
    notification: Notification
    created: float  # wall time it was written
    next_at: float  # wall time the next attempt is due
    state: State = "pending"
    attempts: int = 0
    done: list[str] = field(default_factory=list)  # parts already accepted (PagerDuty: one per alert)
    lease_until: float = 0.0  # a sender holds it until then
    http_status: int | None = None  # the last answer's status
    answer: str = ""  # the last answer (redacted) or network error class
    updated: float = 0.0
    etag: str | None = None  # store's version; not part of the data

    @property
    def id(self) -> str:
        return self.notification.id


@dataclass(frozen=True, slots=True)
class BreakerState:
    """Consecutive retryable failures of one destination, and until when it is left alone."""

    failures: int = 0
    open_until: float = 0.0
    opened: int = 0  # times it opened in a row (the cool-down grows with it)


class Outbox(Protocol):
    def add(self, entry: Entry) -> bool:
        """Write a new entry (and set its etag); False, nothing written, when the destination and id exist."""
        ...

    def get(self, destination: str, entry_id: str) -> Entry | None: ...

    def due(self, now: float, limit: int = 100) -> list[Entry]:
        """Pending entries whose next attempt is due and that no sender holds, oldest first."""
        ...

    def claim(self, entry: Entry, until: float) -> Entry | None:
        """Take the lease on an entry as read; None when someone changed it since (they have it)."""
        ...

    def save(self, entry: Entry) -> bool:
        """Write back a claimed entry (and refresh its etag); False when it changed meanwhile (the lease ran out)."""
        ...

    def entries(self) -> Iterator[Entry]: ...

    def expire(self, before: float) -> int:
        """Delete delivered and failed entries last updated before `before` (wall time); pending ones stay."""
        ...

    def load_breaker(self, destination: str) -> BreakerState: ...

    def save_breaker(self, destination: str, state: BreakerState) -> None: ...


class MemoryOutbox:
    """For tests and one-process replays: the same semantics, copies in and out like a real store."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], Entry] = {}
        self._breakers: dict[str, BreakerState] = {}
        self._version = 0

    def _stamp(self, entry: Entry) -> Entry:
        self._version += 1
        entry.etag = str(self._version)
        stored = copy.deepcopy(entry)
        self._entries[(entry.destination, entry.id)] = stored
        return copy.deepcopy(stored)

    def add(self, entry: Entry) -> bool:
        if (entry.destination, entry.id) in self._entries:
            return False
        self._stamp(entry)
        return True

    def get(self, destination: str, entry_id: str) -> Entry | None:
        found = self._entries.get((destination, entry_id))
        return copy.deepcopy(found) if found else None

    def due(self, now: float, limit: int = 100) -> list[Entry]:
        ready = [e for e in self._entries.values() if e.state == "pending" and e.next_at <= now]
        ready = [e for e in ready if e.lease_until <= now]
        return [copy.deepcopy(e) for e in sorted(ready, key=lambda e: (e.next_at, e.created))[:limit]]

    def claim(self, entry: Entry, until: float) -> Entry | None:
        current = self._entries.get((entry.destination, entry.id))
        if current is None or current.etag != entry.etag:
            return None
        return self._stamp(replace(entry, lease_until=until))

    def save(self, entry: Entry) -> bool:
        current = self._entries.get((entry.destination, entry.id))
        if current is None or current.etag != entry.etag:
            return False
        self._stamp(entry)
        return True

    def entries(self) -> Iterator[Entry]:
        yield from (copy.deepcopy(e) for e in list(self._entries.values()))

    def expire(self, before: float) -> int:
        done = [key for key, e in self._entries.items() if e.state != "pending" and e.updated < before]
        for key in done:
            del self._entries[key]
        return len(done)

    def load_breaker(self, destination: str) -> BreakerState:
        return self._breakers.get(destination, BreakerState())

    def save_breaker(self, destination: str, state: BreakerState) -> None:
        self._breakers[destination] = state


class TableOutbox:
    """Azure Table Storage: table `{prefix}outbox` (PartitionKey destination, RowKey notification id)
    and `{prefix}circuit` (one row per destination)."""

    def __init__(self, service: TableServiceClient, prefix: str = "bindwatch") -> None:
        self._entries = _table(service, f"{prefix}outbox")
        self._breakers = _table(service, f"{prefix}circuit")

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


def _table(service: TableServiceClient, name: str) -> TableClient:
    try:
        return service.create_table(name)
    except ResourceExistsError:
        return service.get_table_client(name)


def to_entity(entry: Entry) -> dict[str, Any]:
    """Flat properties for filtering, the notification as zlib-compressed JSON in ≤60 KB binary chunks."""
    packed = zlib.compress(orjson.dumps(entry.notification.to_dict(), default=str))
    chunks = [packed[i : i + CHUNK] for i in range(0, len(packed), CHUNK)]
    if len(chunks) > MAX_CHUNKS:
        raise ValueError(f"notification {entry.id} is too large for the outbox ({len(packed)} bytes compressed)")
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
        "chunks": len(chunks),
    }
    row.update({f"body{i}": chunk for i, chunk in enumerate(chunks)})
    return row


def from_entity(row: Any) -> Entry:
    packed = b"".join(bytes(row[f"body{i}"]) for i in range(int(row["chunks"])))
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
