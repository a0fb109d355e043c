"""Per user, from their sign-in verdicts: who is ready to enforce and who would break, and why."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from shared.core.binding import Binding
from shared.core.coverage import expected_reason
from shared.core.request import Request
from shared.core.signin import BOUND, UNBOUND
from shared.core.status_code import SELF_REMEDIABLE

from .evidence import USER_WHY, enough_history
from .impact import NO_CODE
from .verdicts import SignInView


def user_readiness(
    views: list[SignInView], by_signin: Mapping[str, list[Request]], expected_ids: set[str], limit: int
) -> dict[str, Any]:
    """Per user, from their sign-in verdicts: ready, bound with too little history, or would break.

    Ready needs only bound sign-ins *and* enough history (`evidence.enough_history`); every user who
    would break is listed (`would_break` is complete: the page and the CSV show all of them);
    `limit` only caps the lists of ready users.
    """
    per_user: dict[str, Counter[str]] = defaultdict(Counter)
    days: dict[str, set[int]] = defaultdict(set)
    codes: dict[str, set[int]] = defaultdict(set)
    apps: dict[str, set[str]] = defaultdict(set)
    for view in views:
        counts = per_user[view.user]
        counts["signins"] += 1
        days[view.user].add(int(view.first_seen // 86400))
        counts["expected" if view.correlation_id in expected_ids else view.verdict] += 1
        if view.verdict == UNBOUND and view.correlation_id not in expected_ids:
            for request in by_signin.get(view.correlation_id, []):
                if request.binding == Binding.UNBOUND and not expected_reason(request):
                    codes[view.user].add(NO_CODE if request.code is None else request.code)
                    apps[view.user].add(request.app)
    only_bound = sorted(u for u, c in per_user.items() if c[BOUND] == c["signins"])
    ready = [u for u in only_bound if enough_history(per_user[u]["signins"], len(days[u]))]
    ready_set = set(ready)
    too_little = [u for u in only_bound if u not in ready_set]
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
        "too_little_history": [
            {"user": u, "signins": per_user[u]["signins"], "days": len(days[u])} for u in too_little[:limit]
        ],
        "too_little_history_total": len(too_little),
        "enough_history": USER_WHY,
        "would_break": breaking,
        "would_break_total": len(breaking),
        "expected_only_total": len(expected_only),
        "not_evaluated_total": len(per_user) - len(only_bound) - len(breaking) - len(expected_only),
    }


def would_break_csv(rows: list[dict[str, Any]]) -> str:
    """Every user who would break, as CSV for a spreadsheet (written beside the HTML page by the CLI)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["user", "signins", "unbound_signins", "codes", "self_remediable_only", "apps"])
    for row in rows:
        codes = " ".join("none" if c == NO_CODE else str(c) for c in row["codes"])
        writer.writerow(
            [_cell(row["user"]), row["signins"], row["unbound_signins"], codes, row["self_remediable_only"],
             _cell("; ".join(row["apps"]))]
        )  # fmt: skip
    return out.getvalue()


def _cell(text: str) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas: a log value must stay text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
