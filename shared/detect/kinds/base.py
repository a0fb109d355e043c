"""The interface every rule kind implements, and what a kind is judged with and says back.

A kind is one module in this package: which rule fields it needs, how far back it
reads window counts, how long it warms up, what it remembers per group, and how it
judges one group at one event time. Adding a kind is adding one module and listing
it in `KINDS` (`shared/detect/kinds/__init__.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from shared.core.alert import Unit

from ..memory import RuleState
from ..window import Counts, Span

if TYPE_CHECKING:
    from ..rules import Rule


@dataclass(slots=True)
class Finding:
    """A rule's verdict for one group at one event time: does its condition hold, and the numbers behind it."""

    rule: Rule
    key: str
    group: dict[str, str]
    holds: bool
    counts: Counts  # the current window's sums (unbound with details, judged)
    current: float  # the measured value: unbound count, or unbound share for ratio rules
    baseline: float | None = None  # spike: baseline count; new: start of the episode
    expected: float | None = None  # spike, unusual: the expected count in a window of this length
    why: str = ""
    frozen: float | None = None  # what a firing alert keeps judging against while it lasts (kinds that compare)
    chance: float | None = None  # unusual: the tail probability, corrected for the groups tested
    parts: dict[str, Counts] = field(default_factory=dict)  # the counted groups judged together (combine)
    severity: str | None = None  # when the kind decides it (a combined alert: its most severe unusual part)


@dataclass(slots=True)
class Moment:
    """What a rule is judged against: the event time, its current window, the rule's memory, and for kinds that
    compare, the counts before the window and the expected counts that firing alerts started with."""

    clock: float
    window: Span
    state: RuleState
    before: dict[str, Counts] = field(default_factory=dict)
    frozen: Mapping[str, float] = field(default_factory=dict)
    memory: Mapping[str, list[float]] = field(default_factory=dict)  # the rule's per-group memory, all shards
    current: Mapping[str, Counts] = field(default_factory=dict)  # every counted group in the window
    tested: int = 1  # groups judged at this moment (the correction for testing many)


class Kind:
    """A rule kind; the defaults suit a kind that looks at its current window only."""

    name: ClassVar[str] = ""
    required: ClassVar[tuple[str, ...]] = ()  # rule fields a rule of this kind must set
    unit: ClassVar[Unit] = "count"  # what the measured value is: a count of sign-ins or a share of them
    learns: ClassVar[bool] = False  # learns from each finished window (`lessons`)
    combines: ClassVar[bool] = False  # judges several counted groups as one alert (`Rule.combine`)
    recency: ClassVar[int] = 0  # which number of a memory entry says when its group was last seen

    def check(self, rule: Rule) -> None:
        """Refuse combinations the kind cannot judge (raise ValueError naming the field)."""

    def warmup(self, rule: Rule) -> float:
        """Seconds of traffic a rule needs before it may fire, unless the rule sets `warmup`."""
        return 0.0

    def lookback(self, rule: Rule) -> float:
        """Seconds before the current window whose counts the kind compares with (0: none)."""
        return 0.0

    def remember(self, rule: Rule, key: str, at: float) -> tuple[Any, ...] | None:
        """A memory update for an unbound sign-in of group `key` at `at` (see GroupMemory.apply), or None."""
        return None

    def forget(self, rule: Rule, clock: float) -> tuple[Any, ...] | None:
        """The memory update that drops groups the rule no longer needs to remember, or None."""
        return None

    def floor(self, rule: Rule) -> float:
        """The least a group must measure in the window (`Counts.measure(rule.count)`) for its condition to hold
        while no alert of it fires. Evaluation judges only the groups that reach it, and those that fire, so a
        minute's cost follows them rather than every group seen; 0 (the default) judges every group counted."""
        return 0.0

    def lessons(
        self, rule: Rule, window: int, totals: Mapping[str, Counts], moment: Moment
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Learning kinds: (group memory updates, rule memory updates) from finished window `window`."""
        return [], []

    def judge(self, rule: Rule, finding: Finding, moment: Moment) -> None:
        """Decide `finding.holds` and say why, from `finding.counts` and the moment."""
        raise NotImplementedError


def span_text(seconds: float) -> str:
    """A duration as people write it: '10 min', '1 h', '7 d'."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"
