"""Per user, from their sign-in verdicts: who is ready to enforce and who would break, and why."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from shared.core.binding import Binding
from shared.core.coverage import expected_reason
from shared.core.request import Request
from shared.core.signin import BOUND, UNBOUND
from shared.core.status_code import SELF_REMEDIABLE

from .impact import NO_CODE
from .verdicts import SignInView


def user_readiness(
    views: list[SignInView], by_signin: Mapping[str, list[Request]], expected_ids: set[str], limit: int
) -> dict[str, Any]:
    """Per user, from their sign-in verdicts: ready (only bound sign-ins) or would break (unbound ones)."""
    per_user: dict[str, Counter[str]] = defaultdict(Counter)
    codes: dict[str, set[int]] = defaultdict(set)
    apps: dict[str, set[str]] = defaultdict(set)
    for view in views:
        counts = per_user[view.user]
        counts["signins"] += 1
        counts["expected" if view.correlation_id in expected_ids else view.verdict] += 1
        if view.verdict == UNBOUND and view.correlation_id not in expected_ids:
            for request in by_signin.get(view.correlation_id, []):
                if request.binding == Binding.UNBOUND and not expected_reason(request):
                    codes[view.user].add(NO_CODE if request.code is None else request.code)
                    apps[view.user].add(request.app)
    ready = sorted(u for u, c in per_user.items() if c[BOUND] == c["signins"])
    breaking = sorted(
        (
            {
                "user": user,
                "signins": c["signins"],
                "unbound_signins": c[UNBOUND],
                "codes": sorted(codes[user]),
                "self_remediable_only": bool(codes[user]) and codes[user] <= SELF_REMEDIABLE,
                "apps": sorted(a for a in apps[user] if a),
            }
            for user, c in per_user.items()
            if c[UNBOUND]
        ),
        key=lambda row: (-row["unbound_signins"], row["user"]),
    )
    expected_only = [u for u, c in per_user.items() if c["expected"] and not c[UNBOUND]]
    return {
        "unit": "user",
        "total": len(per_user),
        "ready": [{"user": u, "signins": per_user[u]["signins"]} for u in ready[:limit]],
        "ready_total": len(ready),
        "would_break": breaking[:limit],
        "would_break_total": len(breaking),
        "expected_only_total": len(expected_only),
        "not_evaluated_total": len(per_user) - len(ready) - len(breaking) - len(expected_only),
    }
