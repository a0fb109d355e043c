"""Which token protection policy change most likely explains an alert: the latest one shortly before it began.

Pure. An unbound spike that starts within `explain_within` (the rules file's [guardrail], 60 minutes by default)
after a change to a token protection policy names that change, so on-call reads the cause with the symptom:
"began 4 min after 'CA-TP01 Require token protection' was switched On by admin@contoso.com".
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.core.policy_change import PolicyChange


def latest_before(changes: Iterable[PolicyChange], at: float, within: float) -> PolicyChange | None:
    """The most recent change at or before `at`, no more than `within` seconds earlier."""
    found = [c for c in changes if c.at <= at <= c.at + within]
    return max(found, key=lambda c: (c.at, c.id), default=None)


def explain(changes: Iterable[PolicyChange], at: float, within: float) -> str:
    """The sentence an alert that began at `at` carries; "" when no change precedes it closely enough."""
    change = latest_before(changes, at, within)
    if change is None:
        return ""
    return f"began {_after(at - change.at)} after {describe(change)}"


def describe(change: PolicyChange) -> str:
    """ "'CA-TP01' was switched On by admin@contoso.com" (with what the scope change was, when that is all)."""
    by = f" by {change.actor}" if change.actor else ""
    text = f"'{change.policy}' was {change.action}{by}"
    if change.action in ("widened", "changed") and change.scope:
        text += " (" + "; ".join(f"{s.what} {s.counts}" for s in change.scope[:3]) + ")"
    return text


def _after(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return "less than a minute"
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"
