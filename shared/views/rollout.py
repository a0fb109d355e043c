"""The rollout owner's view of the guardrail: what switching each policy On would block, and the recent switches.

Pure, over the guardrail's state. Per token protection policy, as of the latest hour it counted: how many sign-ins
it judged in the day before, what share of them it would block (report-only) or blocked (enforced), the causes
that weigh most, and so what a switch now would be judged against. Then each watch of the last week: the change,
its author, what it blocked against what was predicted, and how it ended.
"""

from __future__ import annotations

from typing import Any

from shared.core.timestamp import iso
from shared.detect.guardrail_store import GuardrailState
from shared.detect.prediction import BLOCKED, EVALUATED, HOUR, LOOKBACK_HOURS, WOULD_BLOCK, PolicyHours, predict
from shared.detect.watch import Watch, cause_text


def overview(state: GuardrailState) -> dict[str, Any]:
    """Policies by name, then watches newest first, as plain JSON-able data."""
    return {
        "policies": [_policy(hours) for hours in sorted(state.policies.values(), key=lambda h: h.name.casefold())],
        "watches": [_watch(w) for w in sorted(state.watches.values(), key=lambda w: -w.change.at)],
    }


def _policy(hours: PolicyHours) -> dict[str, Any]:
    latest = (max(hours.hours) + 1) * HOUR if hours.hours else 0.0
    counts, causes = hours.totals(latest - LOOKBACK_HOURS * HOUR, latest)
    prediction = predict(hours, latest + 1)
    top = sorted(causes.items(), key=lambda item: (-item[1], item[0]))[:5]
    return {
        "policy": hours.name,
        "as_of": iso(latest) if latest else None,
        "judged": counts[EVALUATED],
        "would_be_blocked": counts[WOULD_BLOCK],
        "blocked": counts[BLOCKED],
        "share": prediction.share,
        "per_hour": prediction.unbound / prediction.hours if prediction.hours else None,
        "causes": [[cause_text(c), n] for c, n in top],
        "traps": sorted(hours.flags),
    }


def _watch(watch: Watch) -> dict[str, Any]:
    expected = watch.prediction.expected(watch.evaluated)
    return {
        "policy": watch.change.policy,
        "change": watch.change.action,
        "by": watch.change.actor,
        "at": iso(watch.change.at),
        "status": watch.status,
        "judged": watch.evaluated,
        "blocked": watch.blocked,
        "expected": None if expected is None else round(expected, 1),
        # A cause is named only where blocks went beyond the prediction: otherwise the largest excess is noise.
        "cause": cause_text(watch.cause) if watch.cause and watch.paged_at is not None else "",
    }


def text_lines(view: dict[str, Any]) -> list[str]:
    """The terminal's table: one line per policy, one per watch."""
    lines = ["Token protection policies (the day before the latest hour counted):"]
    if not view["policies"]:
        lines.append("  none counted yet")
    for p in view["policies"]:
        share = "no sign-in judged" if p["share"] is None else f"{p['share']:.1%} would be or were blocked"
        causes = ", ".join(f"{c} {n}" for c, n in p["causes"][:3])
        traps = f"; traps: {', '.join(p['traps'])}" if p["traps"] else ""
        lines.append(
            f"  {p['policy']}: {p['judged']:,} sign-ins judged, {share} "
            f"({p['would_be_blocked']:,} report-only, {p['blocked']:,} enforced){'; ' + causes if causes else ''}"
            f"{traps}"
        )
    lines.append("Switches watched:")
    if not view["watches"]:
        lines.append("  none")
    for w in view["watches"]:
        expected = "no prediction" if w["expected"] is None else f"{w['expected']:g} predicted"
        cause = f"; likely cause {w['cause']}" if w["cause"] else ""
        lines.append(
            f"  {w['at']} '{w['policy']}' {w['change']} by {w['by'] or '(not recorded)'}: {w['status']}, "
            f"{w['blocked']:,} blocked of {w['judged']:,} judged, {expected}{cause}"
        )
    return lines
