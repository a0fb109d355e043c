"""Sign-ins as the readiness report sees them: the verdict totals and the period they cover."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from shared.core.signin import BOUND, UNBOUND, UNEVALUATED, SignIn
from shared.core.timestamp import iso


@dataclass(frozen=True, slots=True)
class SignInView:
    correlation_id: str
    verdict: str
    enforcement: str  # none | report_only | enforced
    user: str
    first_seen: float
    last_seen: float

    @classmethod
    def of(cls, signin: SignIn) -> SignInView:
        return cls(
            signin.correlation_id,
            signin.verdict,
            signin.enforcement.label,
            signin.user,
            signin.first_seen,
            signin.last_seen,
        )


def period(views: list[SignInView]) -> dict[str, Any]:
    if not views:
        return {"start": None, "end": None, "seconds": 0.0}
    start = min(v.first_seen for v in views)
    end = max(v.last_seen for v in views)
    return {"start": iso(start), "end": iso(end), "seconds": round(end - start, 3)}


def signin_totals(views: list[SignInView], expected_ids: set[str]) -> dict[str, Any]:
    """Per sign-in: the same counts as replay's summary, plus what enforcement did or would do.

    The parts add up: judged = bound + unbound + unevaluated; unbound = blocked + would_be_blocked +
    unbound_without_policy; and, cut the other way, unbound = expected_unbound + actionable_unbound, with the
    expected ones split by mode too (`expected_by_mode`), so a page can say which tiles are inside which.
    """
    verdicts = Counter(v.verdict for v in views)
    unbound = [v for v in views if v.verdict == UNBOUND]
    modes = Counter(v.enforcement for v in unbound)
    expected_modes = Counter(v.enforcement for v in unbound if v.correlation_id in expected_ids)
    return {
        "unit": "sign-in",
        "judged": len(views),
        "bound": verdicts[BOUND],
        "unbound": verdicts[UNBOUND],
        "unevaluated": verdicts[UNEVALUATED],
        "blocked": modes["enforced"],
        "would_be_blocked": modes["report_only"],
        "unbound_without_policy": modes["none"],
        "expected_unbound": len(expected_ids),
        "actionable_unbound": len(unbound) - len(expected_ids),
        "expected_by_mode": {
            "blocked": expected_modes["enforced"],
            "would_be_blocked": expected_modes["report_only"],
            "without_policy": expected_modes["none"],
        },
        "users": len({v.user for v in views}),
    }
