"""Evaluation: every group of one rule judged at one event time, by the rule's kind.

Pure: the window counts and the time are arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .grouping import alert_group, alert_key, any_code_key, is_any_code
from .kinds import Finding, Moment, kind_of
from .memory import RuleState
from .rules import Rule
from .window import Buckets, Counts, Span, baseline_span, current_span, detailed, total


def evaluate(
    rule: Rule,
    buckets: Buckets,
    moment: Moment,
    keys: Iterable[str] = (),
    frozen: Mapping[str, float] | None = None,
) -> list[Finding]:
    """Judge every group in the current window plus `keys` (groups with live alerts), at `moment.clock`.

    `frozen`: what each firing alert started against (kinds that compare use it), so a spike that lasts keeps
    firing when its own counts have raised the baseline. Every group with traffic in the window is a test made
    (`moment.tested`), which kinds that judge probabilities correct for.
    """
    kind = kind_of(rule)
    current = total(buckets, rule.name, moment.window, detail=False)
    lookback = kind.lookback(rule)
    if lookback:
        moment.before = before(rule, buckets, baseline_span(moment.clock, rule.window, lookback), current, keys)
    if frozen is not None:
        moment.frozen = frozen
    moment.current = current
    parts: dict[str, dict[str, Counts]] = {}
    for key, counts in current.items():
        if not is_any_code(rule, key):  # judged sign-ins of every code: what code groups scale with, not a group
            parts.setdefault(alert_key(rule, key), {})[key] = counts
    moment.tested = max(1, len(parts))
    findings = []
    for key in sorted({*parts, *keys}):
        found = parts.get(key, {})
        counts = next(iter(found.values())) if len(found) == 1 else Counts()
        if len(found) > 1:
            for part in found.values():
                counts.merge(part)
        finding = Finding(rule, key, alert_group(rule, key), False, counts, 0.0, parts=found)
        finding.current = float(finding.counts.measure(rule.count))
        kind.judge(rule, finding, moment)
        findings.append(finding)
    return findings


def before(
    rule: Rule, buckets: Buckets, span: Span, current: Mapping[str, Counts], keys: Iterable[str] = ()
) -> dict[str, Counts]:
    """The counts before the window (judged and unbound: what exposure needs), of the groups that need them:
    those in the window and those with live alerts (and, grouping by code, the every-code groups they scale
    with); none when the window is empty."""
    wanted = {*current, *(k for key in keys for k in _parts_of(rule, key))}
    wanted |= {scale for key in list(wanted) if (scale := any_code_key(rule, key)) is not None}
    return total(buckets, rule.name, span, detail=False, keys=wanted, people=False) if wanted else {}


def _parts_of(rule: Rule, key: str) -> list[str]:
    """The counted groups an alert key may stand for: itself, unless the rule combines (then its parts are in
    the window already, or have nothing before worth judging against either)."""
    return [] if rule.combine else [key]


def with_detail(finding: Finding, buckets: Buckets, moment: Moment) -> Finding:
    """Fill in the top lists and examples of a finding that is decided (judging did without them)."""
    parts = finding.parts or {finding.key: finding.counts}
    detail = detailed(buckets, finding.rule.name, moment.window, parts)
    finding.counts = detail
    return finding


def moment_for(rule: Rule, clock: float, state: RuleState, memory: Mapping[str, list[float]] | None = None) -> Moment:
    return Moment(clock, current_span(clock, rule.window), state, memory=memory or {})
