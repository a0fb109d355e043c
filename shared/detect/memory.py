"""What a rule remembers besides window counts, bounded by design.

Plain data with a JSON form; the detection store keeps it and the detector replays
its small updates (operations) on a write conflict, so instances share it safely.

- `RuleState`, one per rule: when it first saw traffic (warm-up), the last window
  it learnt from, and for learning kinds the rate of the whole population.
- `GroupMemory`, one per rule and shard: what the rule remembers per group (a `new`
  rule's latest episode of each group, an `unusual` rule's learnt rate of each
  group). Groups are spread over `MEMORY_SHARDS` shards by a hash of their key, and
  a shard keeps at most `MAX_ENTRIES` groups and `MAX_CHARS` characters: the least
  recently seen go first (the rule's lookback prunes them anyway). So a rule's
  memory is bounded whatever the tenant sends: at most 16 x 2,000 = 32,000 groups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MEMORY_SHARDS = 16
MAX_ENTRIES = 2_000  # groups per shard row
MAX_CHARS = 250_000  # characters of JSON per shard row (an entity holds 1 MiB of UTF-16)
_ENTRY_OVERHEAD = 48  # characters an entry takes besides its key (three numbers, quotes, brackets)


def shard_of(key: str) -> int:
    """The shard a group's memory lives in: stable across processes (not Python's salted hash)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=2).digest()) % (
        MEMORY_SHARDS
    )


def decay(half_life_windows: float, windows: float) -> float:
    """What weight an observation keeps after `windows` windows, halving every `half_life_windows`."""
    return 0.5 ** (max(0.0, windows) / half_life_windows) if half_life_windows > 0 else 1.0


def _rounded(value: float) -> float:
    return float(f"{value:.6g}")


@dataclass(slots=True)
class RuleState:
    """One rule's own memory: first traffic (warm-up), last window learnt, and the population's rate as
    [unbound, judged, window] decayed sums (learning kinds)."""

    name: str
    started: float | None = None
    learnt: int | None = None
    population: list[float] | None = None
    legacy: dict[str, list[float]] = field(default_factory=dict)  # episodes kept here before shards existed
    etag: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {"name": self.name, "started": self.started, "learnt": self.learnt, "population": self.population}

    @classmethod
    def from_data(cls, data: Mapping[str, Any], etag: str | None = None) -> RuleState:
        started, learnt, population = data.get("started"), data.get("learnt"), data.get("population")
        legacy = {str(k): [float(v[0]), float(v[1])] for k, v in dict(data.get("seen") or {}).items()}
        return cls(
            str(data["name"]),
            None if started is None else float(started),
            None if learnt is None else int(learnt),
            [float(v) for v in population] if population else None,
            legacy,
            etag,
        )

    def apply(self, operation: tuple[Any, ...]) -> bool:
        """Apply one recorded update; True when it changed the stored value."""
        name = operation[0]
        if name == "start":
            return self.start(operation[1])
        if name == "learnt":
            if self.learnt is None or operation[1] > self.learnt:
                self.learnt = int(operation[1])
                return True
            return False
        if name == "population":
            self.population, changed = learn(self.population, *operation[1:])
            return changed
        if name == "migrated":
            changed = bool(self.legacy)
            self.legacy = {}
            return changed
        raise ValueError(f"unknown rule memory operation {name!r}")

    def start(self, at: float) -> bool:
        """Note traffic at `at`; True when the stored value has to change."""
        if self.started is None or at < self.started:
            self.started = at
            return True
        return False


def learn(
    entry: list[float] | None, window: int, unbound: float, judged: float, half_life_windows: float
) -> tuple[list[float], bool]:
    """Fold one finished window into [unbound, judged, window] decayed sums; a window is learnt once."""
    if entry is not None and entry[2] >= window:
        return entry, False
    if entry is None:
        return [_rounded(unbound), _rounded(judged), float(window)], True
    weight = decay(half_life_windows, window - entry[2])
    return [_rounded(entry[0] * weight + unbound), _rounded(entry[1] * weight + judged), float(window)], True


@dataclass(slots=True)
class GroupMemory:
    """One shard of a rule's per-group memory: group key -> a short list of numbers (the kind's)."""

    rule: str
    shard: int
    entries: dict[str, list[float]] = field(default_factory=dict)
    etag: str | None = None
    evicted: int = 0  # entries dropped to stay within the bounds (not persisted: for the log)

    def to_data(self) -> dict[str, Any]:
        return {"rule": self.rule, "shard": self.shard, "entries": self.entries}

    @classmethod
    def from_data(cls, data: Mapping[str, Any], etag: str | None = None) -> GroupMemory:
        entries = {str(k): [float(x) for x in v] for k, v in dict(data.get("entries") or {}).items()}
        return cls(str(data["rule"]), int(data["shard"]), entries, etag)

    def apply(self, operation: tuple[Any, ...]) -> bool:
        """Apply one recorded update (see the operation names below); True when it changed anything."""
        name, *rest = operation
        if name == "see":
            return self.see(*rest)
        if name == "episode":
            return self.episode(*rest)
        if name == "learn":
            key, *values = rest
            self.entries[key], changed = learn(self.entries.get(key), *values)
            return changed
        if name == "forget":
            return self.forget(*rest)
        if name == "cap":
            return self.cap(*rest)
        raise ValueError(f"unknown group memory operation {name!r}")

    def see(self, key: str, at: float, lookback: float) -> bool:
        """A `new` rule's unbound sign-in of a group: [first, last] of its latest episode (coarse: hourly)."""
        episode = self.entries.get(key)
        if episode is None or at > episode[1] + lookback:
            self.entries[key] = [at, at]
            return True
        if at < episode[0]:
            episode[0] = at
            return True
        if at > episode[1] + 3600.0:
            episode[1] = at
            return True
        episode[1] = max(episode[1], at)
        return False

    def episode(self, key: str, first: float, last: float) -> bool:
        """An episode carried over from the old one-row memory."""
        if key in self.entries:
            return False
        self.entries[key] = [first, last]
        return True

    def forget(self, position: int, before: float) -> bool:
        """Drop the groups last seen (entry[position]) before `before`: the rule's lookback is over for them."""
        old = [key for key, entry in self.entries.items() if entry[position] < before]
        for key in old:
            del self.entries[key]
        return bool(old)

    def cap(self, position: int, limit: int = MAX_ENTRIES, chars: int = MAX_CHARS) -> bool:
        """Keep the most recently seen groups within `limit` entries and `chars` characters; count the rest."""
        size = sum(len(key) + _ENTRY_OVERHEAD for key in self.entries)
        if len(self.entries) <= limit and size <= chars:
            return False
        kept: dict[str, list[float]] = {}
        used = 0
        for key, entry in sorted(self.entries.items(), key=lambda item: item[1][position], reverse=True):
            cost = len(key) + _ENTRY_OVERHEAD
            if len(kept) >= limit or used + cost > chars:
                continue
            kept[key] = entry
            used += cost
        self.evicted += len(self.entries) - len(kept)
        self.entries = kept
        return True
