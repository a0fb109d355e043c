"""Where the guardrail keeps token protection policy changes, each policy's hourly counts, and the watches.

One interface, an in-memory implementation (replay, tests) and a Table Storage one
(`shared.storage.guardrail_table`). Changes are written once by their audit record's id (a redelivered record
is the same change); counts and watches are written conditionally (ETags), and a loser re-reads and replays its
updates, so instances sharing the table neither lose nor double a count or a page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from shared.core.policy_change import PolicyChange

from .prediction import PolicyHours
from .watch import Watch

Row = TypeVar("Row", PolicyHours, Watch)


@dataclass(slots=True)
class GuardrailState:
    """What a batch starts from: recent changes, every policy's counts, and the watches (live and recent)."""

    changes: list[PolicyChange] = field(default_factory=list)
    policies: dict[str, PolicyHours] = field(default_factory=dict)
    watches: dict[str, Watch] = field(default_factory=dict)


class GuardrailStore(Protocol):
    def load(self, since: float) -> GuardrailState:
        """Changes made since `since` (event time), every policy's counts, and the watches live or decided since."""
        ...

    def add_change(self, change: PolicyChange) -> bool:
        """Keep a change once (by its id); False when it was already kept."""
        ...

    def save_policy(self, hours: PolicyHours) -> bool:
        """Write if nobody wrote it since it was loaded (etag; None: only if absent); False on a conflict."""
        ...

    def load_policy(self, key: str) -> PolicyHours | None: ...

    def save_watch(self, watch: Watch) -> bool:
        """Write if nobody wrote it since it was loaded (etag; None: only if absent); False on a conflict."""
        ...

    def load_watch(self, watch_id: str) -> Watch | None: ...


class MemoryGuardrailStore:
    """One process and one writer (replay, tests), no I/O: rows are kept as the objects written, not copied (this is
    on replay's path, as the detection memory store's buckets are); version numbers stand in for ETags."""

    def __init__(self) -> None:
        self.changes: dict[str, PolicyChange] = {}
        self._policies: dict[str, PolicyHours] = {}
        self._watches: dict[str, Watch] = {}
        self._version = 0

    def load(self, since: float) -> GuardrailState:
        return GuardrailState(
            changes=sorted((c for c in self.changes.values() if c.at >= since), key=lambda c: (c.at, c.id)),
            policies=dict(self._policies),
            watches={k: w for k, w in self._watches.items() if _recent(w, since)},
        )

    def add_change(self, change: PolicyChange) -> bool:
        if change.id in self.changes:
            return False
        self.changes[change.id] = change
        return True

    def save_policy(self, hours: PolicyHours) -> bool:
        return self._save(self._policies, hours.key, hours)

    def load_policy(self, key: str) -> PolicyHours | None:
        return self._policies.get(key)

    def save_watch(self, watch: Watch) -> bool:
        return self._save(self._watches, watch.id, watch)

    def load_watch(self, watch_id: str) -> Watch | None:
        return self._watches.get(watch_id)

    def _save(self, rows: dict[str, Row], key: str, value: Row) -> bool:
        stored = rows.get(key)
        if stored is not None and stored is not value and stored.etag != value.etag:
            return False
        if stored is None and value.etag is not None:
            return False
        self._version += 1
        value.etag = str(self._version)
        rows[key] = value
        return True


def _recent(watch: Watch, since: float) -> bool:
    return watch.live or (watch.decided_at or watch.ends) >= since
