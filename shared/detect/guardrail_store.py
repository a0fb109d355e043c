"""Where the guardrail keeps token protection policy changes, each policy's hourly counts, and the watches.

One interface, an in-memory implementation (replay, tests) and a Table Storage one
(`shared.storage.guardrail_table`). Changes are written once by their audit record's id (a redelivered record
is the same change); counts and watches are written conditionally (ETags), and a loser re-reads and replays its
updates, so instances sharing the table neither lose nor double a count or a page.
"""

from __future__ import annotations

import copy
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
    """One process, no I/O; version numbers stand in for ETags, and rows are copies, as in the table."""

    def __init__(self) -> None:
        self.changes: dict[str, PolicyChange] = {}
        self._policies: dict[str, tuple[PolicyHours, str]] = {}
        self._watches: dict[str, tuple[Watch, str]] = {}
        self._version = 0

    def load(self, since: float) -> GuardrailState:
        return GuardrailState(
            changes=sorted((c for c in self.changes.values() if c.at >= since), key=lambda c: (c.at, c.id)),
            policies={k: self._copy(*v) for k, v in self._policies.items()},
            watches={k: self._copy(*v) for k, v in self._watches.items() if _recent(v[0], since)},
        )

    def add_change(self, change: PolicyChange) -> bool:
        if change.id in self.changes:
            return False
        self.changes[change.id] = change
        return True

    def save_policy(self, hours: PolicyHours) -> bool:
        return self._save(self._policies, hours.key, hours)

    def load_policy(self, key: str) -> PolicyHours | None:
        stored = self._policies.get(key)
        return self._copy(*stored) if stored else None

    def save_watch(self, watch: Watch) -> bool:
        return self._save(self._watches, watch.id, watch)

    def load_watch(self, watch_id: str) -> Watch | None:
        stored = self._watches.get(watch_id)
        return self._copy(*stored) if stored else None

    def _save(self, rows: dict[str, tuple[Row, str]], key: str, value: Row) -> bool:
        stored = rows.get(key)
        if (stored[1] if stored else None) != value.etag:
            return False
        self._version += 1
        value.etag = str(self._version)
        rows[key] = (copy.deepcopy(value), value.etag)
        return True

    @staticmethod
    def _copy(value: Row, etag: str) -> Row:
        found = copy.deepcopy(value)
        found.etag = etag
        return found


def _recent(watch: Watch, since: float) -> bool:
    return watch.live or (watch.decided_at or watch.ends) >= since
