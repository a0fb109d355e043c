"""`ratio`: the unbound share of a group's judged sign-ins above a level, with a minimum volume."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Finding, Kind, Moment, span_text

if TYPE_CHECKING:
    from ..rules import Rule


class Ratio(Kind):
    name = "ratio"
    required = ("ratio",)
    unit = "share"

    def check(self, rule: Rule) -> None:
        if "status_code" in rule.group_by or "status_code" in rule.match:
            raise ValueError("field group_by: a ratio rule cannot use status_code (judged sign-ins have no code)")
        if rule.count != "signins":
            raise ValueError("field count: a ratio rule measures the share of sign-ins")

    def floor(self, rule: Rule) -> float:
        """It fires only with at least `min_current` unbound sign-ins in the window (whatever the share)."""
        return float(rule.min_current)

    def judge(self, rule: Rule, finding: Finding, moment: Moment) -> None:
        counts = finding.counts
        share = min(1.0, counts.unbound / counts.judged) if counts.judged else 0.0
        finding.current = share
        finding.holds = (
            counts.judged >= rule.min_volume and counts.unbound >= rule.min_current and share >= (rule.ratio or 1.0)
        )
        finding.why = (
            f"{counts.unbound} of {counts.judged} judged sign-ins unbound ({share:.0%}) in {span_text(rule.window)}"
            f" (alerts at {rule.ratio:.0%} with at least {rule.min_volume} sign-ins)"
        )


KIND = Ratio()
