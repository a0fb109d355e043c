"""Where window counts, rule memory and alert states live: the interface, and the in-memory store.

Shared state is what lets a restart or a second instance neither lose nor repeat
an alert: window buckets are merged with conditional writes (a conflict re-reads
and re-merges, so counts add up exactly), and alert states are written
conditionally, so only the instance whose write wins emits a decision. The Table
Storage implementation is `shared.storage.detection_table`.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from .lifecycle import AlertState
from .memory import RuleState
from .window import Bucket, Buckets, merge_bucket


class StateConflict(Exception):
    """Another writer kept winning; the batch fails and the host retries it."""


class DetectionStore(Protocol):
    def merge_buckets(self, increments: Buckets, first: int, last: int, batch: str | None = None) -> Buckets:
        """Add the increments (atomically per bucket) and return the buckets from minute `first` to `last`."""
        ...

    def load_states(self) -> tuple[dict[str, RuleState], dict[str, AlertState]]:
        """Every rule's memory, and the alert states still live (firing, or with decisions to notify)."""
        ...

    def save_rule(self, state: RuleState) -> bool:
        """Write if nobody wrote it since it was loaded (etag); False on a conflict."""
        ...

    def load_rule(self, name: str) -> RuleState | None: ...

    def save_alert(self, state: AlertState) -> bool:
        """Write if nobody wrote it since it was loaded (etag); False on a conflict."""
        ...

    def load_alert(self, fingerprint: str) -> AlertState | None: ...

    def prune(self, before: int) -> int:
        """Drop window buckets older than minute `before`; returns how many."""
        ...


class MemoryDetectionStore:
    """One process, no I/O; versions stand in for ETags so conflicts behave as in the table."""

    def __init__(self) -> None:
        self._buckets: dict[int, Bucket] = {}
        self._rules: dict[str, tuple[dict[str, Any], str]] = {}
        self._alerts: dict[str, tuple[dict[str, Any], str]] = {}
        self._version = 0

    def _next(self) -> str:
        self._version += 1
        return str(self._version)

    def merge_buckets(self, increments: Buckets, first: int, last: int, batch: str | None = None) -> Buckets:
        """Buckets are kept as objects (no serialisation round trip: this is the hot path of replay).

        One process and no retries: `batch` needs no memory here."""
        for minute, increment in increments.items():
            merge_bucket(self._buckets.setdefault(minute, {}), increment)
        return {m: b for m, b in self._buckets.items() if first <= m <= last}

    def load_states(self) -> tuple[dict[str, RuleState], dict[str, AlertState]]:
        rules = {n: RuleState.from_data(d, e) for n, (d, e) in self._rules.items()}
        alerts = {f: AlertState.from_data(d, e) for f, (d, e) in self._alerts.items()}
        return rules, {f: a for f, a in alerts.items() if a.live}

    def save_rule(self, state: RuleState) -> bool:
        stored = self._rules.get(state.name)
        if (stored[1] if stored else None) != state.etag:
            return False
        state.etag = self._next()
        self._rules[state.name] = (json.loads(json.dumps(state.to_data())), state.etag)
        return True

    def load_rule(self, name: str) -> RuleState | None:
        stored = self._rules.get(name)
        return RuleState.from_data(stored[0], stored[1]) if stored else None

    def save_alert(self, state: AlertState) -> bool:
        stored = self._alerts.get(state.fingerprint)
        if (stored[1] if stored else None) != state.etag:
            return False
        state.etag = self._next()
        self._alerts[state.fingerprint] = (json.loads(json.dumps(state.to_data())), state.etag)
        return True

    def load_alert(self, fingerprint: str) -> AlertState | None:
        stored = self._alerts.get(fingerprint)
        return AlertState.from_data(stored[0], stored[1]) if stored else None

    def prune(self, before: int) -> int:
        old = [m for m in self._buckets if m < before]
        for minute in old:
            del self._buckets[minute]
        return len(old)
