"""Where an alert goes and whether it is muted: labels, routes and silences from the rules file.

Pure. Routes and silences match on the same labels (rule, severity, kind,
enforcement and the group's values), case-insensitively.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .rules import Rule, RulesFile


def labels(rule: Rule, group: Mapping[str, str]) -> dict[str, str]:
    """What routes and silences match on."""
    base = {"rule": rule.name, "severity": rule.severity, "kind": rule.kind}
    enforcement = group.get("enforcement") or rule.enforcement()
    if enforcement != "any":
        base["enforcement"] = enforcement
    return {**base, **group}


def receivers(rules: RulesFile, rule: Rule, group: Mapping[str, str], configured: Iterable[str]) -> list[str]:
    """Where an alert goes: the configured receivers of every matching route, else every configured destination.

    Routes may name destinations a deployment does not have (the shipped routes name all three); those are
    skipped. When none of the routed ones is configured, the alert still goes to every configured
    destination rather than nowhere.
    """
    available = list(configured)
    found = [r for route in rules.routes if route.matches(labels(rule, group)) for r in route.receivers]
    routed = [r for r in dict.fromkeys(found) if r in available]
    return routed or available


def silenced(rules: RulesFile, rule: Rule, group: Mapping[str, str], at: float) -> bool:
    return any(s.mutes(labels(rule, group), at) for s in rules.silences)
