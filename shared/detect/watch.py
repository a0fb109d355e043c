"""The watch after a token protection policy is switched On (or widened): did it block what report-only said?

Pure. A watch opens at the change's event time with the policy's prediction (prediction.py) and counts, from
then on, the sign-ins the policy judged and blocked, by cause. While it watches (`watch` in the rules file's
[guardrail], 60 minutes by default) it pages as soon as the blocks are well beyond the prediction: at least
`min_blocked`, at least `factor` times the expected count, and a Poisson tail below `chance`, for all the
policy's sign-ins or for one app, platform or status code. A watch that ends without that says "as predicted".
A page resolves when the policy is switched back, or when a quarter of an hour passes with the blocks back
below `min_blocked` and within the prediction; it gives up a day after the change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.core.policy_change import PolicyChange

from .prediction import BLOCKED, EVALUATED, MAX_BATCHES, Prediction, Seen
from .probability import poisson_tail

WATCHING, PAGED, PREDICTED, QUIET, RESOLVED = "watching", "paged", "predicted", "quiet", "resolved"
LIVE = (WATCHING, PAGED)
SLOT = 300.0  # seconds of a recent-counts slot (what a page's recovery is judged on)
RECOVERY = 900.0  # a page resolves after this long back within the prediction
GIVE_UP = 86400.0  # a page still open a day after the change resolves (the spike rules still watch)
DIMENSIONS = (("app", "app"), ("platform", "platform"), ("code", "status code"))


@dataclass(frozen=True, slots=True)
class Limits:
    """When enforced blocks are "well beyond" the prediction (the rules file's [guardrail])."""

    min_blocked: int = 10
    factor: float = 3.0
    chance: float = 0.001


@dataclass(slots=True)
class Watch:
    """One change's watch: what was predicted, what it blocked since, and where it stands."""

    change: PolicyChange
    policy: str  # the policy key its sign-ins are counted under
    prediction: Prediction
    ends: float  # event time the watch window closes
    status: str = WATCHING
    evaluated: int = 0
    blocked: int = 0
    causes: dict[str, int] = field(default_factory=dict)
    slots: dict[int, list[int]] = field(default_factory=dict)  # 5-minute slot -> [evaluated, blocked]
    decided_at: float | None = None  # event time of its latest decision
    paged_at: float | None = None
    cause: str = ""  # the likely cause it paged on
    batches: list[str] = field(default_factory=list)
    etag: str | None = None

    @property
    def id(self) -> str:
        return self.change.id

    @property
    def live(self) -> bool:
        return self.status in LIVE

    def apply(self, operation: tuple[Any, ...]) -> bool:
        """("count", Seen), ("batch", key), ("status", status, at, cause); True when it changed."""
        name = operation[0]
        if name == "count":
            return self._count(operation[1])
        if name == "batch":
            if operation[1] in self.batches:
                return False
            self.batches = [*self.batches, operation[1]][-MAX_BATCHES:]
            return True
        if name == "status":
            if self.status == operation[1]:
                return False
            self.status, self.decided_at, self.cause = operation[1], float(operation[2]), str(operation[3])
            if self.status == PAGED:
                self.paged_at = self.decided_at
            return True
        raise ValueError(f"unknown watch update {name!r}")

    def _count(self, seen: Seen) -> bool:
        if seen.at < self.change.at or seen.outcome not in (EVALUATED, BLOCKED):
            return False
        slot = self.slots.setdefault(int(seen.at // SLOT), [0, 0])
        if seen.outcome == EVALUATED:
            self.evaluated += 1
            slot[0] += 1
            return True
        self.blocked += 1
        slot[1] += 1
        for cause in seen.causes:
            self.causes[cause] = self.causes.get(cause, 0) + 1
        return True

    def recent(self, clock: float, seconds: float = RECOVERY) -> tuple[int, int]:
        """Evaluated and blocked in the whole slots of the last `seconds` before `clock`."""
        last = int(clock // SLOT)
        parts = [self.slots.get(s, (0, 0)) for s in range(last - int(seconds // SLOT), last)]
        return sum(p[0] for p in parts), sum(p[1] for p in parts)

    def to_data(self) -> dict[str, Any]:
        return {
            "change": self.change.line(),
            "policy": self.policy,
            "prediction": self.prediction.to_data(),
            "ends": self.ends,
            "status": self.status,
            "evaluated": self.evaluated,
            "blocked": self.blocked,
            "causes": self.causes,
            "slots": {str(s): v for s, v in self.slots.items()},
            "decided_at": self.decided_at,
            "paged_at": self.paged_at,
            "cause": self.cause,
            "batches": self.batches,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any], etag: str | None = None) -> Watch:
        return cls(
            change=PolicyChange.from_line(data["change"]),
            policy=str(data["policy"]),
            prediction=Prediction.from_data(data["prediction"]),
            ends=float(data["ends"]),
            status=str(data["status"]),
            evaluated=int(data["evaluated"]),
            blocked=int(data["blocked"]),
            causes={str(c): int(n) for c, n in dict(data.get("causes") or {}).items()},
            slots={int(s): [int(n) for n in v] for s, v in dict(data.get("slots") or {}).items()},
            decided_at=None if data.get("decided_at") is None else float(data["decided_at"]),
            paged_at=None if data.get("paged_at") is None else float(data["paged_at"]),
            cause=str(data.get("cause") or ""),
            batches=list(data.get("batches") or ()),
            etag=etag,
        )


@dataclass(frozen=True, slots=True)
class Judgement:
    status: str  # PAGED | PREDICTED | QUIET | RESOLVED
    cause: str = ""  # the likely cause ("app:Contoso CRM"), "" when none stands out
    reason: str = ""  # why a page resolved


def judge(watch: Watch, clock: float, limits: Limits) -> Judgement | None:
    """The watch's next decision at event time `clock`, if any."""
    if watch.status == WATCHING:
        if beyond(watch, limits):
            return Judgement(PAGED, likely_cause(watch))
        if clock >= watch.ends:
            return Judgement(PREDICTED if watch.evaluated else QUIET, likely_cause(watch))
        return None
    if watch.status == PAGED:
        if clock >= watch.change.at + GIVE_UP:
            return Judgement(RESOLVED, watch.cause, "the watch gave up a day after the change")
        if _recovered(watch, clock, limits):
            return Judgement(RESOLVED, watch.cause, "blocks have been back within the prediction for 15 min")
    return None


def rolled_back(watch: Watch, change: PolicyChange) -> Judgement | None:
    """A later change that stops enforcing the watched policy ends its watch (and resolves its page)."""
    if not watch.live or change.at < watch.change.at or not change.rolls_back:
        return None
    if watch.status == WATCHING:
        return Judgement(RESOLVED, watch.cause, f"the policy was {change.action} before the watch ended")
    return Judgement(RESOLVED, watch.cause, f"the policy was {change.action}" + _by(change.actor))


def beyond(watch: Watch, limits: Limits) -> bool:
    """Blocks well beyond the prediction, for all the policy's sign-ins or for one cause."""
    candidates = [(watch.blocked, None), *((n, c) for c, n in watch.causes.items() if c != "other")]
    return any(_beyond(observed, watch.prediction.expected(watch.evaluated, c), limits) for observed, c in candidates)


def crossed(watch: Watch, updates: list[tuple[Any, ...]], limits: Limits) -> tuple[float, Watch] | None:
    """When, within a batch, a watch's blocks went beyond the prediction, and the watch as it stood then. A batch
    may span many minutes (replay reads ten bodies at a time): a page is dated, and its figures taken, when its
    evidence was complete, as the rules are evaluated minute by minute."""
    scratch = Watch.from_data(watch.to_data())
    for update in sorted(updates, key=lambda u: u[1].at):
        if scratch.apply(update) and update[1].outcome == BLOCKED and beyond(scratch, limits):
            return float(update[1].at), scratch
    return None


def _beyond(observed: int, expected: float | None, limits: Limits) -> bool:
    if observed < limits.min_blocked:
        return False
    if expected is None:  # nothing to predict from: enough blocks page on their own
        return True
    return observed >= limits.factor * expected and poisson_tail(observed, max(expected, 0.5)) < limits.chance


def excess(watch: Watch, cause: str) -> float:
    """Blocks of one cause beyond what the prediction expected of it."""
    expected = watch.prediction.expected(watch.evaluated, cause) or 0.0
    return watch.causes.get(cause, 0) - expected


def likely_cause(watch: Watch) -> str:
    """The cause with the most blocks beyond the prediction. An app is preferred while it holds at least half of
    the largest excess: an app is what an exclusion can name, and a platform or code is often just its shadow."""
    ranked = sorted(
        (
            (excess(watch, cause), -order, cause)
            for order, (prefix, _) in enumerate(DIMENSIONS)
            for cause in watch.causes
            if cause.startswith(prefix + ":")
        ),
        reverse=True,
    )
    if not ranked or ranked[0][0] <= 0:
        return ""
    apps = [item for item in ranked if item[2].startswith("app:")]
    if apps and apps[0][0] >= ranked[0][0] / 2:
        return apps[0][2]
    return ranked[0][2]


def _recovered(watch: Watch, clock: float, limits: Limits) -> bool:
    if watch.paged_at is None or clock - watch.paged_at < RECOVERY:
        return False
    evaluated, blocked = watch.recent(clock)
    expected = watch.prediction.expected(evaluated)
    return blocked < limits.min_blocked and (expected is None or blocked <= max(limits.factor * expected, 1.0))


def cause_text(cause: str) -> str:
    """'app:Contoso CRM' -> "app 'Contoso CRM'"."""
    prefix, _, value = cause.partition(":")
    word = dict(DIMENSIONS).get(prefix, prefix)
    return f"{word} '{value}'" if value else word


def way_back(watch: Watch) -> list[str]:
    """What stops the harm now: the switch back to the previous state, and the exclusion for the likely cause."""
    change = watch.change
    previous = {"report_only": "Report-only", "off": "Off", "on": "On", "": "its previous state"}
    steps = [f"Set '{change.policy}' back to {previous.get(change.state_before, change.state_before)}"]
    if not change.enforces_now and change.scope:
        steps = [f"Undo the scope change to '{change.policy}' ({'; '.join(_scope_text(change))})"]
    prefix, _, value = watch.cause.partition(":")
    if prefix == "app" and value:
        steps.append(f"or exclude the app '{value}' (Target resources > Exclude) while it is fixed")
    elif prefix == "platform" and value:
        steps.append(f"or exclude the device platform '{value}' (Conditions > Device platforms > Exclude)")
    elif prefix == "code" and value:
        steps.append(f"or exclude the users or devices behind code {value} (Users > Exclude) while it is fixed")
    return steps


def _scope_text(change: PolicyChange) -> list[str]:
    """ "apps included +app-1, app-2" per list that changed (the first three values each way)."""
    found = []
    for scope in change.scope:
        pairs = (("+", scope.added), ("-", scope.removed))
        signs = [mark + ", ".join(values[:3]) for mark, values in pairs if values]
        found.append(f"{scope.what} {' '.join(signs)}")
    return found


def _by(actor: str) -> str:
    return f" by {actor}" if actor else ""
