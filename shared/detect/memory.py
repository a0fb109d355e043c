"""What a rule remembers besides window counts: when it first saw traffic, and the episodes of its groups.

Plain data with a JSON form; the detection store keeps it (one row per rule) and
the detector replays its small updates on a write conflict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class RuleState:
    """What a rule remembers besides window counts: when it first saw traffic (warm-up), and for `new`
    rules, each group's latest episode of unbound sign-ins as [first, last] event times."""

    name: str
    started: float | None = None
    seen: dict[str, list[float]] = field(default_factory=dict)
    etag: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {"name": self.name, "started": self.started, "seen": self.seen}

    @classmethod
    def from_data(cls, data: Mapping[str, Any], etag: str | None = None) -> RuleState:
        seen = {str(k): [float(v[0]), float(v[1])] for k, v in dict(data.get("seen") or {}).items()}
        started = data.get("started")
        return cls(str(data["name"]), None if started is None else float(started), seen, etag)

    def apply(self, operation: tuple[Any, ...]) -> bool:
        """Apply one recorded update (`("start", at)` or `("see", key, at, lookback)`); True when it changed."""
        if operation[0] == "start":
            return self.start(operation[1])
        return self.see(operation[1], operation[2], operation[3])

    def start(self, at: float) -> bool:
        """Note traffic at `at`; True when the stored value has to change."""
        if self.started is None or at < self.started:
            self.started = at
            return True
        return False

    def see(self, key: str, at: float, lookback: float) -> bool:
        """Note an unbound sign-in of a group for a `new` rule; True when worth writing (coarse: hourly)."""
        episode = self.seen.get(key)
        if episode is None or at > episode[1] + lookback:
            self.seen[key] = [at, at]
            return True
        if at < episode[0]:
            episode[0] = at
            return True
        if at > episode[1] + 3600.0:
            episode[1] = at
            return True
        episode[1] = max(episode[1], at)
        return False
