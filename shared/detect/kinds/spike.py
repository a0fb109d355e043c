"""`spike`: a group's unbound count in the window against what the baseline before it leads to expect."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..window import BUCKET_SECONDS, Span
from .base import Finding, Kind, Moment, span_text

if TYPE_CHECKING:
    from ..rules import Rule


class Spike(Kind):
    name = "spike"
    required = ("baseline", "spike_height")

    def check(self, rule: Rule) -> None:
        if rule.count != "signins":
            raise ValueError("field count: a spike rule counts sign-ins (an unusual rule counts users)")

    def warmup(self, rule: Rule) -> float:
        return rule.baseline or 0.0

    def lookback(self, rule: Rule) -> float:
        return rule.baseline or 0.0

    def floor(self, rule: Rule) -> float:
        """It fires only with at least `min_current` unbound sign-ins in the window."""
        return float(rule.min_current)

    def judge(self, rule: Rule, finding: Finding, moment: Moment) -> None:
        """`moment.frozen` holds the expected count a firing alert started with: a spike that lasts keeps firing
        when its own counts have raised the baseline."""
        baseline = rule.baseline or 0.0
        started = moment.state.started
        covered = _covered(started, moment.window, baseline)
        base = moment.before.get(finding.key)
        count = base.unbound if base else 0
        frozen = moment.frozen.get(finding.key)
        observed = count / covered if covered > 0 else 0.0
        expected = frozen if frozen is not None else max(observed, rule.min_baseline / baseline) * rule.window
        warmed = started is not None and moment.clock - started >= rule.warmup_seconds and covered > 0
        unbound = finding.counts.unbound
        finding.baseline = float(count)
        finding.expected = expected
        finding.frozen = expected
        finding.holds = warmed and unbound >= rule.min_current and unbound >= (rule.spike_height or 1.0) * expected
        started_with = "; the baseline the alert started with" if frozen else ""
        finding.why = (
            f"{unbound} unbound sign-ins in {span_text(rule.window)} against {expected:.1f} expected "
            f"({count} in the {span_text(baseline)} before{started_with}); "
            f"alerts at {rule.spike_height:g}x with at least {rule.min_current}" + ("" if warmed else "; warming up")
        )


def _covered(started: float | None, window: Span, baseline: float) -> float:
    """Seconds of the baseline for which there was traffic at all (a young rule has a short baseline)."""
    if started is None:
        return 0.0
    end = window.first * float(BUCKET_SECONDS)
    return max(0.0, min(baseline, end - max(end - baseline, started)))


KIND = Spike()
