"""Evaluation: every group of one rule judged at one event time, by the rule's kind.

Pure: the window counts and the time are arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .grouping import group_of
from .kinds import Finding, Moment, kind_of
from .memory import RuleState
from .rules import Rule
from .window import Buckets, Counts, baseline_span, current_span, total


def evaluate(
    rule: Rule,
    buckets: Buckets,
    moment: Moment,
    keys: Iterable[str] = (),
    frozen: Mapping[str, float] | None = None,
) -> list[Finding]:
    """Judge every group in the current window plus `keys` (groups with live alerts), at `moment.clock`.

    `frozen`: the expected count each firing alert started with (kinds that compare use it), so a spike that
    lasts keeps firing when its own counts have raised the baseline.
    """
    kind = kind_of(rule)
    current = total(buckets, rule.name, moment.window)
    lookback = kind.lookback(rule)
    if lookback:
        moment.before = total(buckets, rule.name, baseline_span(moment.clock, rule.window, lookback))
    if frozen is not None:
        moment.frozen = frozen
    findings = []
    for key in sorted({*current, *keys}):
        finding = Finding(rule, key, group_of(rule, key), False, current.get(key) or Counts(), 0.0)
        finding.current = float(finding.counts.unbound)
        kind.judge(rule, finding, moment)
        findings.append(finding)
    return findings


def moment_for(rule: Rule, clock: float, state: RuleState) -> Moment:
    return Moment(clock, current_span(clock, rule.window), state)
