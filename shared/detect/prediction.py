"""What a token protection policy blocks, or would block, hour by hour: the prediction a switch is judged against.

Pure. Each sign-in is counted once per token protection policy that judged it: `evaluated` when it is first
stored (the policy applied to one of its requests, in report-only or enforced), and `would_block` or `blocked`
when it first turns unbound under that policy (report-only or enforced). The store reports both transitions
once per sign-in, so the counts are exact however often a batch is delivered (rows remember the batches they
took). Unbound sign-ins also count by cause (`app:`, `platform:`, `code:`), so a watch can say which app,
platform or status code broke beyond what report-only showed.

Policies are known here by their display name, as the sign-in logs give it (`appliedConditionalAccessPolicies`
carries the name, and the name is what a person reads); a rename is followed through the change that made it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.core.binding import NOT_APPLIED_RESULTS, Binding
from shared.core.coverage import platform
from shared.core.policy_change import policy_key
from shared.core.request import Request
from shared.ingest.store import Update, group_by_signin

HOUR = 3600.0
KEEP_HOURS = 8 * 24  # a week of report-only results, and the day of the switch
LOOKBACK_HOURS = 24  # what a prediction rests on: the day before the change
MAX_CAUSES = 30  # causes kept per hour (the most frequent); the rest count as "other"
MAX_BATCHES = 64  # batch keys a row remembers (a redelivery comes within minutes, not after 64 batches)
EVALUATED, WOULD_BLOCK, BLOCKED = 0, 1, 2
OUTCOMES = ("evaluated", "would_block", "blocked")


@dataclass(frozen=True, slots=True)
class Seen:
    """One sign-in judged by one token protection policy."""

    policy: str  # its display name
    at: float
    outcome: int  # EVALUATED | WOULD_BLOCK | BLOCKED
    causes: tuple[str, ...] = ()


def seen_in(requests: Sequence[Request], updates: Sequence[Update]) -> list[Seen]:
    """What this batch's sign-ins tell of each token protection policy (each transition once)."""
    by_signin = group_by_signin(requests) if requests else {}
    seen: list[Seen] = []
    for update in updates:
        own = by_signin.get(update.signin.correlation_id, ())
        if update.created:
            seen += [Seen(name, update.first_at, EVALUATED) for name in _applied(own)]
        if update.became_unbound and update.unbound_at is not None:
            seen += _unbound(own, update.unbound_at)
    return seen


def _applied(requests: Iterable[Request]) -> list[str]:
    names: dict[str, str] = {}
    for request in requests:
        for name, result, _ in request.policies:
            if name and result.lower() not in NOT_APPLIED_RESULTS:
                names.setdefault(policy_key(name), name)
    return list(names.values())


def _unbound(requests: Sequence[Request], at: float) -> list[Seen]:
    """The policies that judged the unbound requests, each once, with the first unbound request's causes."""
    unbound = [r for r in requests if r.binding == Binding.UNBOUND]
    if not unbound:
        return []
    first = min(unbound, key=lambda r: (r.at, r.id))
    causes = (f"app:{first.app or '(no app)'}", f"platform:{platform(first.os)}", f"code:{first.code or 'none'}")
    found: dict[str, Seen] = {}
    for request in unbound:
        for name, result, _ in request.policies:
            lowered = result.lower()
            if not name or lowered in NOT_APPLIED_RESULTS:
                continue
            outcome = WOULD_BLOCK if lowered.startswith("reportonly") else BLOCKED
            key = policy_key(name)
            if key not in found or outcome > found[key].outcome:
                found[key] = Seen(name, at, outcome, causes)
    return list(found.values())


@dataclass(slots=True)
class PolicyHours:
    """One policy's counts by hour since the epoch: [evaluated, would_block, blocked], and unbound by cause."""

    key: str
    name: str
    hours: dict[int, list[int]] = field(default_factory=dict)
    causes: dict[int, dict[str, int]] = field(default_factory=dict)
    batches: list[str] = field(default_factory=list)
    etag: str | None = None
    flags: dict[str, float] = field(default_factory=dict)  # traps flagged (core/trap.py), once each: when

    def apply(self, operation: tuple[Any, ...]) -> bool:
        """Apply one recorded update; True when it changed the row. ("count", hour, outcome, n),
        ("cause", hour, cause, n), ("batch", key), ("name", name), ("prune", first hour kept), ("flag", trap, at)."""
        name = operation[0]
        if name == "flag":
            if operation[1] in self.flags:
                return False
            self.flags[str(operation[1])] = float(operation[2])
            return True
        if name == "count":
            _, hour, outcome, amount = operation
            self.hours.setdefault(int(hour), [0, 0, 0])[int(outcome)] += int(amount)
        elif name == "cause":
            _, hour, cause, amount = operation
            bucket = self.causes.setdefault(int(hour), {})
            bucket[cause] = bucket.get(cause, 0) + int(amount)
            _cap(bucket)
        elif name == "batch":
            if operation[1] in self.batches:
                return False
            self.batches = [*self.batches, operation[1]][-MAX_BATCHES:]
        elif name == "name":
            if self.name == operation[1]:
                return False
            self.name = str(operation[1])
        elif name == "prune":
            return self._prune(int(operation[1]))
        return True

    def took(self, batch: str | None) -> bool:
        return batch is not None and batch in self.batches

    def _prune(self, first: int) -> bool:
        old = [h for h in self.hours if h < first] + [h for h in self.causes if h < first]
        for hour in old:
            self.hours.pop(hour, None)
            self.causes.pop(hour, None)
        return bool(old)

    def totals(self, first: float, last: float) -> tuple[list[int], dict[str, int]]:
        """Counts and causes of the whole hours that fall in [first, last)."""
        counts, causes = [0, 0, 0], {}
        for hour in range(int(first // HOUR), int(last // HOUR)):
            for index, amount in enumerate(self.hours.get(hour, ())):
                counts[index] += amount
            for cause, amount in self.causes.get(hour, {}).items():
                causes[cause] = causes.get(cause, 0) + amount
        return counts, causes

    def to_data(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "hours": {str(h): v for h, v in self.hours.items()},
            "causes": {str(h): v for h, v in self.causes.items()},
            "batches": self.batches,
            "flags": self.flags,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any], etag: str | None = None) -> PolicyHours:
        hours = {int(h): [int(n) for n in v][:3] for h, v in dict(data.get("hours") or {}).items()}
        causes = {int(h): {str(c): int(n) for c, n in v.items()} for h, v in dict(data.get("causes") or {}).items()}
        flags = {str(k): float(v) for k, v in dict(data.get("flags") or {}).items()}
        key, name = str(data["key"]), str(data.get("name") or data["key"])
        return cls(key, name, hours, causes, list(data["batches"]), etag, flags)


def _cap(causes: dict[str, int]) -> None:
    if len(causes) <= MAX_CAUSES:
        return
    ranked = sorted(causes.items(), key=lambda item: (-item[1], item[0]))
    kept, rest = ranked[: MAX_CAUSES - 1], ranked[MAX_CAUSES - 1 :]
    causes.clear()
    causes.update(kept)
    causes["other"] = causes.get("other", 0) + sum(n for _, n in rest)


def operations(seen: Iterable[Seen]) -> dict[str, list[tuple[Any, ...]]]:
    """The updates each policy's row takes from what a batch saw, by policy key (summed: one update per hour,
    outcome and cause, however many sign-ins)."""
    names: dict[str, str] = {}
    counts: Counter[tuple[str, int, int]] = Counter()
    causes: Counter[tuple[str, int, str]] = Counter()
    for item in seen:
        key, hour = policy_key(item.policy), int(item.at // HOUR)
        names.setdefault(key, item.policy)
        counts[key, hour, item.outcome] += 1
        for cause in item.causes:
            causes[key, hour, cause] += 1
    found: dict[str, list[tuple[Any, ...]]] = {key: [("name", name)] for key, name in names.items()}
    for (key, hour, outcome), amount in counts.items():
        found[key].append(("count", hour, outcome, amount))
    for (key, hour, cause), amount in causes.items():
        found[key].append(("cause", hour, cause, amount))
    return found


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the day before a change showed: of the sign-ins the policy judged, how many it blocked or would
    have blocked, and why. A switch from report-only is judged against its report-only results; a widening of
    an enforced policy against what it blocked before."""

    hours: int  # hours with results it rests on
    evaluated: int
    unbound: int  # would-be blocked (report-only) and blocked (enforced)
    causes: dict[str, int] = field(default_factory=dict)

    @property
    def share(self) -> float | None:
        return self.unbound / self.evaluated if self.evaluated else None

    def expected(self, evaluated: int, cause: str | None = None) -> float | None:
        """Unbound sign-ins expected among `evaluated` judged ones (of one cause, when given); None without basis."""
        if not self.evaluated:
            return None
        part = self.unbound if cause is None else self.causes.get(cause, 0)
        return part * evaluated / self.evaluated

    def to_data(self) -> dict[str, Any]:
        return {"hours": self.hours, "evaluated": self.evaluated, "unbound": self.unbound, "causes": self.causes}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Prediction:
        causes = {str(c): int(n) for c, n in dict(data.get("causes") or {}).items()}
        return cls(int(data["hours"]), int(data["evaluated"]), int(data["unbound"]), causes)


def predict(history: PolicyHours | None, before: float, hours: int = LOOKBACK_HOURS) -> Prediction:
    """The prediction for a change at `before`: the whole hours of the `hours` before the hour it falls in."""
    if history is None:
        return Prediction(0, 0, 0)
    last = (before // HOUR) * HOUR
    counts, causes = history.totals(last - hours * HOUR, last)
    with_results = sum(1 for h in range(int(last // HOUR) - hours, int(last // HOUR)) if h in history.hours)
    return Prediction(with_results, counts[EVALUATED], counts[WOULD_BLOCK] + counts[BLOCKED], causes)
