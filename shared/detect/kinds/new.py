"""`new`: the first unbound sign-ins of a group (an app, a code) after a lookback without any."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Finding, Kind, Moment, span_text

if TYPE_CHECKING:
    from ..rules import Rule


class New(Kind):
    name = "new"
    required = ("lookback",)

    def warmup(self, rule: Rule) -> float:
        return rule.lookback or 0.0

    recency = 1  # an episode is [first, last]

    def remember(self, rule: Rule, key: str, at: float) -> tuple[Any, ...] | None:
        """Each group's latest episode of unbound sign-ins, so a group seen last week is not new."""
        return ("see", key, at, rule.lookback or 0.0)

    def forget(self, rule: Rule, clock: float) -> tuple[Any, ...] | None:
        """A group whose last unbound sign-in is older than the lookback is new again: remembering it is moot."""
        return ("forget", self.recency, clock - (rule.lookback or 0.0) - rule.window)

    def floor(self, rule: Rule) -> float:
        """It fires only with at least `min_current` in the window."""
        return float(rule.min_current)

    def judge(self, rule: Rule, finding: Finding, moment: Moment) -> None:
        clock, state = moment.clock, moment.state
        episode = moment.memory.get(finding.key)
        first = episode[0] if episode else None
        recent = first is not None and first > clock - rule.window
        warmed = state.started is not None and first is not None and first - state.started >= rule.warmup_seconds
        finding.baseline = first
        finding.holds = recent and warmed and finding.current >= rule.min_current
        noun = "users with unbound sign-ins" if rule.count == "users" else "unbound sign-ins"
        finding.why = (
            f"first unbound sign-ins after {span_text(rule.lookback or 0.0)} without any: "
            f"{finding.current:g} {noun} in {span_text(rule.window)}" + ("" if warmed or not recent else "; warming up")
        )


KIND = New()
