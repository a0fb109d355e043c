"""Where window counts, rule memory, alert states and incidents live: the interface, and the in-memory store.

Shared state is what lets a restart or a second instance neither lose nor repeat
an alert: window buckets are merged with conditional writes (a conflict re-reads
and re-merges, so counts add up exactly), and memory, alert states and incidents
are written conditionally, so only the instance whose write wins emits a decision.
The Table Storage implementation is `shared.storage.detection_table`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.telemetry import log_event

from .incident import IncidentState
from .lifecycle import AlertState
from .memory import GroupMemory, RuleState
from .window import Bucket, Buckets, merge_bucket


class StateConflict(Exception):
    """Another writer kept winning; the batch fails and the host retries it."""


class Degraded:
    """What was dropped to keep state within its bounds, counted, and logged once per kind of loss per process
    (`detection_degraded`): detail is given up before a batch is, and nobody is left wondering why."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def note(self, what: str, amount: int = 1, **fields: Any) -> None:
        if amount <= 0:
            return
        first = what not in self.counts
        self.counts[what] += amount
        if first:
            log_event("detection_degraded", logging.WARNING, what=what, amount=amount, detail=fields)


@dataclass(slots=True)
class DetectionState:
    """What a batch starts from: every rule's memory, and the alerts and incidents still live."""

    rules: dict[str, RuleState] = field(default_factory=dict)
    memory: dict[tuple[str, int], GroupMemory] = field(default_factory=dict)  # (rule, shard) -> groups
    alerts: dict[str, AlertState] = field(default_factory=dict)
    incidents: dict[str, IncidentState] = field(default_factory=dict)


class DetectionStore(Protocol):
    def merge_buckets(self, increments: Buckets, first: int, last: int, batch: str | None = None) -> Buckets:
        """Add the increments (atomically per bucket) and return the buckets from minute `first` to `last`."""
        ...

    def load_states(self) -> DetectionState:
        """Every rule's memory, and the alert states and incidents still live."""
        ...

    def save_rule(self, state: RuleState) -> bool:
        """Write if nobody wrote it since it was loaded (etag); False on a conflict."""
        ...

    def load_rule(self, name: str) -> RuleState | None: ...

    def save_memory(
        self, shards: Sequence[GroupMemory], rules: Sequence[RuleState] = ()
    ) -> list[GroupMemory | RuleState]:
        """Write each shard and rule row if nobody wrote it since it was loaded (together, where the store can);
        returns those that lost a conflict."""
        ...

    def load_memory(self, rule: str, shard: int) -> GroupMemory | None: ...

    def save_alert(self, state: AlertState) -> bool:
        """Write if nobody wrote it since it was loaded (etag); False on a conflict."""
        ...

    def load_alert(self, fingerprint: str) -> AlertState | None: ...

    def save_incident(self, state: IncidentState) -> bool:
        """Write if nobody wrote it since it was loaded (etag); False on a conflict."""
        ...

    def load_incident(self, incident: str) -> IncidentState | None: ...

    def prune(self, before: int) -> int:
        """Drop window buckets older than minute `before`; returns how many."""
        ...


class _Versioned:
    """Rows as JSON-shaped copies with a version each, so conflicts behave as ETags do in the table."""

    def __init__(self) -> None:
        self.rows: dict[Any, tuple[dict[str, Any], str]] = {}
        self._version = 0

    def save(self, key: Any, data: dict[str, Any], etag: str | None) -> str | None:
        stored = self.rows.get(key)
        if (stored[1] if stored else None) != etag:
            return None
        self._version += 1
        self.rows[key] = (json.loads(json.dumps(data)), str(self._version))
        return str(self._version)

    def get(self, key: Any) -> tuple[dict[str, Any], str] | None:
        return self.rows.get(key)


class MemoryDetectionStore:
    """One process, no I/O; versions stand in for ETags so conflicts behave as in the table."""

    def __init__(self) -> None:
        self._buckets: dict[int, Bucket] = {}
        self._rules = _Versioned()
        self._memory = _Versioned()
        self._alerts = _Versioned()
        self._incidents = _Versioned()

    def merge_buckets(self, increments: Buckets, first: int, last: int, batch: str | None = None) -> Buckets:
        """Buckets are kept as objects (no serialisation round trip: this is the hot path of replay).

        One process and no retries: `batch` needs no memory here."""
        for minute, increment in increments.items():
            merge_bucket(self._buckets.setdefault(minute, {}), increment)
        return {m: b for m, b in self._buckets.items() if first <= m <= last}

    def load_states(self) -> DetectionState:
        alerts = (AlertState.from_data(d, e) for d, e in self._alerts.rows.values())
        incidents = (IncidentState.from_data(d, e) for d, e in self._incidents.rows.values())
        return DetectionState(
            rules={n: RuleState.from_data(d, e) for n, (d, e) in self._rules.rows.items()},
            memory={k: GroupMemory.from_data(d, e) for k, (d, e) in self._memory.rows.items()},
            alerts={a.fingerprint: a for a in alerts if a.live},
            incidents={i.id: i for i in incidents if i.live},
        )

    def save_rule(self, state: RuleState) -> bool:
        return _stamp(state, self._rules.save(state.name, state.to_data(), state.etag))

    def load_rule(self, name: str) -> RuleState | None:
        stored = self._rules.get(name)
        return RuleState.from_data(*stored) if stored else None

    def save_memory(
        self, shards: Sequence[GroupMemory], rules: Sequence[RuleState] = ()
    ) -> list[GroupMemory | RuleState]:
        lost: list[GroupMemory | RuleState] = [r for r in rules if not self.save_rule(r)]
        lost += [s for s in shards if not _stamp(s, self._memory.save((s.rule, s.shard), s.to_data(), s.etag))]
        return lost

    def load_memory(self, rule: str, shard: int) -> GroupMemory | None:
        stored = self._memory.get((rule, shard))
        return GroupMemory.from_data(*stored) if stored else None

    def save_alert(self, state: AlertState) -> bool:
        return _stamp(state, self._alerts.save(state.fingerprint, state.to_data(), state.etag))

    def load_alert(self, fingerprint: str) -> AlertState | None:
        stored = self._alerts.get(fingerprint)
        return AlertState.from_data(*stored) if stored else None

    def save_incident(self, state: IncidentState) -> bool:
        return _stamp(state, self._incidents.save(state.id, state.to_data(), state.etag))

    def load_incident(self, incident: str) -> IncidentState | None:
        stored = self._incidents.get(incident)
        return IncidentState.from_data(*stored) if stored else None

    def prune(self, before: int) -> int:
        old = [m for m in self._buckets if m < before]
        for minute in old:
            del self._buckets[minute]
        return len(old)


def _stamp(state: Any, etag: str | None) -> bool:
    if etag is None:
        return False
    state.etag = etag
    return True
