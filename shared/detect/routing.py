"""Where an alert goes and whether it is muted: labels, routes, silences and inhibit rules from the rules file.

Pure. Routes, silences and inhibit rules match on the same labels (rule, severity,
kind, enforcement and the group's values), case-insensitively.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from .rules import Rule, RulesFile, matches
from .silence import RuntimeSilence, muted_by


def labels(rule: Rule, group: Mapping[str, str], severity: str | None = None) -> dict[str, str]:
    """What routes, silences and inhibit rules match on (`severity`: when the alert's own differs from the rule's)."""
    base = {"rule": rule.name, "severity": severity or rule.severity_of(group), "kind": rule.kind}
    enforcement = group.get("enforcement") or rule.enforcement()
    if enforcement != "any":
        base["enforcement"] = enforcement
    return {**base, **group}


def receivers(
    rules: RulesFile, rule: Rule, group: Mapping[str, str], configured: Iterable[str], severity: str | None = None
) -> list[str]:
    """Where an alert goes: the configured receivers of every matching route, else every configured destination.

    Routes may name destinations a deployment does not have (the shipped routes name all three); those are
    skipped. When none of the routed ones is configured, the alert still goes to every configured
    destination rather than nowhere.
    """
    available = list(configured)
    found = [r for route in rules.routes if route.matches(labels(rule, group, severity)) for r in route.receivers]
    routed = [r for r in dict.fromkeys(found) if r in available]
    return routed or available


def silenced(
    rules: RulesFile,
    rule: Rule,
    group: Mapping[str, str],
    at: float,
    severity: str | None = None,
    *,
    live: Sequence[RuntimeSilence] = (),
) -> bool:
    """Muted by a rules-file silence at the decision's event time, or by a run-time silence active now (`live`)."""
    seen = labels(rule, group, severity)
    return any(s.mutes(seen, at) for s in rules.silences) or muted_by(live, seen) is not None


def inhibited(rules: RulesFile, target: Mapping[str, str], firing: Iterable[Mapping[str, str]]) -> bool:
    """Alertmanager's inhibition: a firing source alert mutes a target alert whose `equal` labels have the same
    values (a missing label is empty on both sides). An alert matching both sides of a rule is not muted by
    another alert that does too, so two alerts of one kind cannot silence each other."""
    sources = [s for s in firing if s is not target]
    for rule in rules.inhibit_rules:
        if not matches(rule.target_match, target):
            continue
        both = matches(rule.source_match, target)
        for source in sources:
            if not matches(rule.source_match, source) or (both and matches(rule.target_match, source)):
                continue
            if all(source.get(name, "") == target.get(name, "") for name in rule.equal):
                return True
    return False
