"""The durable outbox: every notification is written here before it is sent, and marked once a 2xx came back.

One interface, an in-memory implementation here and an Azure Table Storage one in
`shared.storage.outbox_table`. An entry is
keyed by (destination, notification id) and never overwritten by a second `add`, so a
notification submitted again after a restart is not sent again once delivered. A
sender `claim`s an entry (ETag-conditioned) before sending, so two instances running
the timer at once do not both send it. The circuit-breaker state per destination
lives here too: it must survive instances as well.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from shared.core.alert import Notification

from .breaker import BreakerState

State = Literal["pending", "delivered", "failed"]


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
