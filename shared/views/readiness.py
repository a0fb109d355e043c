"""Readiness figures: who would be blocked, why, and can we enforce now.

A pure accumulator (an `Observer`) collects the judged requests and the final
sign-in verdicts; `figures()` turns them into one plain dict that the JSON output
and the HTML report both render. Every figure names its unit: Microsoft's impact
queries count **requests** (deduplicated by request id), while bindwatch's verdict
is per **sign-in** (correlation id). Nothing here does I/O. The sections are
computed in their own modules: `impact` (Microsoft's figures, breakdowns, codes),
`timeline`, `users`, `expected`, `hints`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.core.binding import Binding
from shared.core.coverage import expected_reason
from shared.core.detail import decode
from shared.core.policy_change import PolicyChange
from shared.core.request import Request, merge_copies
from shared.core.signin import UNBOUND, UNEVALUATED
from shared.core.timestamp import parse_time
from shared.ingest.pipeline import Batch

from .causes import blocking_causes
from .changes import change_figures, marks
from .evidence import period_evidence
from .expected import expected_traffic
from .hints import policy_hints
from .impact import BREAKDOWNS, KEYS, breakdown, code_table, microsoft_figures, results
from .timeline import timeline
from .users import user_readiness
from .verdicts import SignInView, period, signin_totals

UNITS = {
    "request": "request: one row of the sign-in logs, copies merged (deduplicated by request id, as Microsoft's KQL)",
    "sign-in": "sign-in: all requests sharing a correlation id, one bindwatch verdict (the worst request wins)",
    "user": "user: judged by the verdicts of their sign-ins in the period",
}


@dataclass
class Readiness:
    """Observer: keeps every distinct request and each sign-in's latest final verdict (as replay's summary)."""

    requests: dict[str, Request] = field(default_factory=dict)
    signins: dict[str, SignInView] = field(default_factory=dict)
    changes: dict[str, PolicyChange] = field(default_factory=dict)  # token protection policy changes, by audit id

    def observe(self, batch: Batch) -> list[dict[str, Any]]:
        for change in batch.changes:
            self.changes.setdefault(change.id, change)
        for request in batch.requests:
            known = self.requests.get(request.id)
            self.requests[request.id] = request if known is None else merge_copies(known, request)
        for signin in batch.finals:
            self.signins[signin.correlation_id] = SignInView.of(signin)
        return []

    def figures(self, top: int = 15, limit: int = 200) -> dict[str, Any]:
        changes = list(self.changes.values())
        return figures(self.requests.values(), self.signins.values(), top=top, limit=limit, changes=changes)


# --- the stored sign-in details (shared.views.lookup's shape) as requests and sign-ins ---


def from_details(details: Iterable[Mapping[str, Any]]) -> tuple[list[Request], list[SignInView]]:
    """Requests and sign-ins from stored sign-in details (`shared.lookup.signin_detail` shape).

    Open sign-ins (state 'open') are left out: their verdict can still change, as replay counts only finals.
    """
    requests: list[Request] = []
    signins: list[SignInView] = []
    for detail in details:
        if detail.get("state") == "open":
            continue
        cid = str(detail.get("correlation_id", ""))
        first = parse_time(detail.get("first_seen")) or 0.0
        signins.append(
            SignInView(
                cid,
                str(detail.get("verdict", UNEVALUATED)),
                str(detail.get("enforcement", "none")),
                str(detail.get("user", "")),
                first,
                parse_time(detail.get("last_seen")) or first,
            )
        )
        user = str(detail.get("user", ""))
        for index, item in enumerate(detail.get("request_details") or []):
            requests.append(decode(item, cid, index=index, user=user, at=first))
    return requests, signins


# --- the figures ---


def figures(
    requests: Iterable[Request],
    signins: Iterable[SignInView],
    top: int = 15,
    limit: int = 200,
    changes: Sequence[PolicyChange] = (),
) -> dict[str, Any]:
    """All figures of the report as plain JSON-able data; each section says its unit."""
    reqs = list(requests)
    views = list(signins)
    by_signin: dict[str, list[Request]] = defaultdict(list)
    for request in reqs:
        by_signin[request.correlation_id].append(request)
    expected_ids = {
        v.correlation_id for v in views if v.verdict == UNBOUND and _all_expected(by_signin[v.correlation_id])
    }
    span = period(views)
    impact = microsoft_figures(reqs)
    judged = results(reqs)
    return {
        "type": "readiness",
        "period": span,
        "evidence": period_evidence(span["seconds"]),
        "units": UNITS,
        "signins": signin_totals(views, expected_ids),
        "requests": impact,
        "timeline": {**timeline(views, expected_ids), "marks": marks(changes)},
        "policy_changes": change_figures(reqs, changes),
        "breakdowns": {key: breakdown(judged, KEYS[key])[:top] for key in BREAKDOWNS},
        "codes": code_table(reqs),
        "causes": blocking_causes(reqs, impact),
        "users": user_readiness(views, by_signin, expected_ids, limit),
        "expected": expected_traffic(reqs, expected_ids, top),
        "hints": policy_hints(reqs),
    }


def _all_expected(requests: list[Request]) -> bool:
    unbound = [r for r in requests if r.binding == Binding.UNBOUND]
    return bool(unbound) and all(expected_reason(r) for r in unbound)
