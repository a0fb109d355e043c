"""`threshold`: at least N unbound sign-ins of a group in the window."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Finding, Kind, Moment, span_text

if TYPE_CHECKING:
    from ..rules import Rule


class Threshold(Kind):
    name = "threshold"
    required = ("threshold",)

    def floor(self, rule: Rule) -> float:
        return float(rule.threshold or 1)

    def judge(self, rule: Rule, finding: Finding, moment: Moment) -> None:
        measured = finding.current
        finding.holds = measured >= (rule.threshold or 1)
        noun = "users with unbound sign-ins" if rule.count == "users" else "unbound sign-ins"
        finding.why = f"{measured:g} {noun} in {span_text(rule.window)} (alerts at {rule.threshold})"


KIND = Threshold()
