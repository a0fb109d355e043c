"""The embedded sign-in store: one process, no I/O, memory that follows the open sign-ins."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence

from shared.core.clock import ClockState
from shared.core.request import Request
from shared.core.signin import SignIn

from .store import Update, fold, group_by_signin


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

    def settle(self, cutoff: float, orphan_age: float = 0.0) -> list[SignIn]:
        """One process: what it claims it reports, so nothing is ever orphaned (`orphan_age` is moot)."""
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

    def acknowledge(self, finals: Sequence[SignIn], flush: bool = False) -> None:
        """Nothing to keep: a memory store's claims and reports happen in one process."""

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
