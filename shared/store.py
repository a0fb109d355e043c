"""Where sign-ins live between requests: one interface, an in-memory and a Table Storage implementation.

The store does the folding itself (`merge`) so that a shared store can make each
sign-in's update atomic (Table Storage: ETag-conditioned entity group
transactions) while the in-memory store simply mutates a dict. Both answer the
same questions: what changed, which sign-ins are due, what is stored.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from .request import Request
from .signin import SignIn


@dataclass(slots=True)
class Update:
    """What one batch did to one sign-in."""

    signin: SignIn
    changed: bool  # False when the batch only repeated what was stored (redelivery): nothing to write
    created: bool  # its first request came in this batch
    became_unbound: bool  # its verdict turned unbound in this batch (counted once, ever)
    new_requests: int
    duplicates: int
    reopened: bool  # it had been final; a late request updated it
    first_at: float  # event time of the earliest request of this batch for it
    unbound_at: float | None  # event time of the request that made it unbound


@dataclass(slots=True)
class ClockState:
    """The shared event clock: the latest event time seen, and the wall time it was seen at."""

    watermark: float
    wall: float


class SignInStore(Protocol):
    def merge(self, requests: Sequence[Request], clock: float, batch: str | None = None) -> list[Update]:
        """Fold requests into their sign-ins (atomically per sign-in) and say what changed.

        `batch` identifies a batch a retry reproduces: a shared store reports the first run's
        created/unbound transitions again for sign-ins that run already wrote, so none is lost.
        """
        ...

    def settle(self, cutoff: float) -> list[SignIn]:
        """Claim the open sign-ins that no request touched after `cutoff` (event time); each is returned once."""
        ...

    def get(self, correlation_id: str) -> SignIn | None: ...

    def signins(self) -> Iterator[SignIn]: ...

    def expire(self, before: float) -> int:
        """Retention: remove final sign-ins last touched before `before`; say how many."""
        ...

    def load_clock(self) -> ClockState | None: ...

    def save_clock(self, state: ClockState) -> None:
        """Advance the shared clock; never moves it back."""
        ...


def group_by_signin(requests: Sequence[Request]) -> dict[str, list[Request]]:
    grouped: dict[str, list[Request]] = defaultdict(list)
    for request in requests:
        grouped[request.correlation_id].append(request)
    return grouped


def fold(signin: SignIn | None, correlation_id: str, requests: Sequence[Request], clock: float) -> Update:
    """Pure: apply a batch's requests of one sign-in to its stored state (None when new)."""
    created = signin is None
    current = SignIn(correlation_id) if signin is None else signin
    reopened = current.finals > 0 and not created
    new_requests = duplicates = 0
    changed = False
    unbound_at = None
    first_at = float("inf")
    for request in requests:
        absorbed = current.absorb(request, clock)
        duplicates += absorbed.duplicate
        new_requests += not absorbed.duplicate
        changed = changed or absorbed.changed
        if absorbed.became_unbound:
            unbound_at = request.at
        first_at = min(first_at, request.at)
    return Update(
        signin=current,
        changed=changed,
        created=created,
        became_unbound=unbound_at is not None,
        new_requests=new_requests,
        duplicates=duplicates,
        reopened=reopened and changed,
        first_at=first_at,
        unbound_at=unbound_at,
    )


class MemoryStore:
    """The embedded store for replay and tests: one process, no I/O.

    Final sign-ins are kept for `keep_final_seconds` of event time so a late
    request still updates them, then dropped: memory follows the open sign-ins,
    not the length of the stream.
    """

    def __init__(self, keep_final_seconds: float = 3600.0) -> None:
        self._signins: dict[str, SignIn] = {}
        self._open: dict[str, float] = {}  # correlation id -> touched_at of its open generation
        self._due: list[tuple[float, str]] = []  # heap of (touched_at, id); stale entries skipped lazily
        self._finals: list[tuple[float, str]] = []  # heap of (eviction time, id)
        self._keep_final = keep_final_seconds
        self._clock: ClockState | None = None

    def merge(self, requests: Sequence[Request], clock: float, batch: str | None = None) -> list[Update]:
        """One process, no retries: `batch` needs no memory here."""
        updates = []
        for correlation_id, group in group_by_signin(requests).items():
            update = fold(self._signins.get(correlation_id), correlation_id, group, clock)
            signin = update.signin
            self._signins[correlation_id] = signin
            if update.changed and self._open.get(correlation_id) != signin.touched_at:
                self._open[correlation_id] = signin.touched_at
                heapq.heappush(self._due, (signin.touched_at, correlation_id))
            updates.append(update)
        return updates

    def settle(self, cutoff: float) -> list[SignIn]:
        due = []
        while self._due and self._due[0][0] <= cutoff:
            touched_at, correlation_id = heapq.heappop(self._due)
            if self._open.get(correlation_id) != touched_at:
                continue  # a later request moved it; a newer heap entry stands for it
            del self._open[correlation_id]
            signin = self._signins[correlation_id]
            signin.finals += 1
            due.append(signin)
            heapq.heappush(self._finals, (touched_at + self._keep_final, correlation_id))
        self._evict(cutoff)
        return sorted(due, key=lambda s: (s.touched_at, s.correlation_id))

    def _evict(self, cutoff: float) -> None:
        while self._finals and self._finals[0][0] <= cutoff:
            _, correlation_id = heapq.heappop(self._finals)
            signin = self._signins.get(correlation_id)
            if (
                signin is not None
                and correlation_id not in self._open
                and signin.touched_at + self._keep_final <= cutoff
            ):
                del self._signins[correlation_id]

    def get(self, correlation_id: str) -> SignIn | None:
        return self._signins.get(correlation_id)

    def signins(self) -> Iterator[SignIn]:
        return iter(list(self._signins.values()))

    def expire(self, before: float) -> int:
        expired = [c for c, s in self._signins.items() if c not in self._open and s.touched_at < before]
        for correlation_id in expired:
            del self._signins[correlation_id]
        return len(expired)

    def open_count(self) -> int:
        return len(self._open)

    def load_clock(self) -> ClockState | None:
        return self._clock

    def save_clock(self, state: ClockState) -> None:
        if self._clock is None or state.watermark > self._clock.watermark:
            self._clock = state
