"""Microsoft's impact figures, per request: blocked, would be blocked, allowed; by app, resource, platform,
client app and status code.

Block = a token protection policy's session control was not satisfied (enforced or
report-only); Allow = a token protection policy applied and was satisfied; requests
no such policy applied to are out, as in Microsoft's impact queries.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from shared.core.binding import ENFORCED_RESULTS, Binding
from shared.core.coverage import expected_reason, platform
from shared.core.request import Request
from shared.core.status_code import SELF_REMEDIABLE, describe

BREAKDOWNS = ("app", "resource", "platform", "client_app")
NO_CODE = -1  # the key of unbound requests without a status code


def outcome(request: Request) -> str | None:
    """Microsoft's per-request Result: 'blocked' (enforced), 'would_block' (report-only), 'allowed', or None.

    None means no token protection policy applied to the request, so it is outside Block/Allow.
    """
    if not request.policies:
        return None
    failing = [result for _, result, not_satisfied in request.policies if not_satisfied]
    if any(result in ENFORCED_RESULTS for result in failing):
        return "blocked"
    return "would_block" if failing else "allowed"


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def microsoft_figures(requests: Iterable[Request]) -> dict[str, Any]:
    """Microsoft's impact figures, per request (docs/signin-logs.md, "Impact figures"), over every resource.

    Block = a token protection policy's session control was not satisfied (enforced or report-only);
    Allow = a token protection policy applied and was satisfied; requests no such policy applied to are out.
    """
    counts: Counter[str] = Counter()
    users: dict[str, set[str]] = defaultdict(set)
    distinct = 0
    for request in requests:
        distinct += 1
        result = outcome(request)
        if result is None:
            continue
        counts[result] += 1
        users["all"].add(request.user)
        if result != "allowed":
            users["blocked"].add(request.user)
            if request.code in SELF_REMEDIABLE:
                counts["self_remediable"] += 1
                users["self_remediable"].add(request.user)
    block = counts["blocked"] + counts["would_block"]
    allow = counts["allowed"]
    return {
        "unit": "request",
        "distinct": distinct,
        "evaluated": allow + block,
        "allowed": allow,
        "block": block,
        "blocked": counts["blocked"],
        "would_be_blocked": counts["would_block"],
        "self_remediable": counts["self_remediable"],
        "pct_allowed": _pct(allow, allow + block),
        "pct_enforceable": _pct(allow + counts["self_remediable"], allow + block),
        "users": len(users["all"]),
        "blocked_users": len(users["blocked"]),
        "self_remediable_users": len(users["self_remediable"]),
    }


KEYS: dict[str, Callable[[Request], str]] = {
    "app": lambda r: r.app or "(no app)",
    "resource": lambda r: r.resource or "(no resource)",
    "platform": lambda r: platform(r.os),
    "client_app": lambda r: r.client_app or "(not reported)",
}


def is_expected_unbound(request: Request) -> bool:
    """Unbound, but for a reason Token Protection does not cover (browser, unsupported platform)."""
    return request.binding == Binding.UNBOUND and expected_reason(request) is not None


def results(requests: Iterable[Request]) -> list[tuple[Request, str]]:
    """Each request that a breakdown counts, with what it counts as (judged once for every breakdown)."""
    found = []
    for request in requests:
        result = "expected_unbound" if is_expected_unbound(request) else outcome(request)
        if result is not None:
            found.append((request, result))
    return found


def breakdown(judged: Iterable[tuple[Request, str]], key: Callable[[Request], str]) -> list[dict[str, Any]]:
    """Per request (as judged by `results`), grouped by `key`: allowed, would be blocked, blocked, and expected
    unbound, apart.

    Requests under a token protection policy count as Microsoft's queries count them, except that an
    unbound request Token Protection does not cover (browser, unsupported platform) is never 'allowed' or
    a block to fix: it is counted in `expected_unbound`, with or without a policy, so the row's share shows it.
    """
    rows: dict[str, Counter[str]] = defaultdict(Counter)
    users: dict[str, set[str]] = defaultdict(set)
    signins: dict[str, set[str]] = defaultdict(set)
    for request, result in judged:
        name = key(request)
        rows[name][result] += 1
        if result in ("blocked", "would_block"):
            users[name].add(request.user)
            signins[name].add(request.correlation_id)
    table = [_row(name, counts, users[name], signins[name]) for name, counts in rows.items()]
    return sorted(table, key=lambda row: (-row["blocked"] - row["would_be_blocked"], -row["requests"], row["name"]))


def _row(name: str, counts: Counter[str], users: set[str], signins: set[str]) -> dict[str, Any]:
    total = sum(counts.values())
    return {
        "name": name,
        "requests": total,
        "allowed": counts["allowed"],
        "would_be_blocked": counts["would_block"],
        "blocked": counts["blocked"],
        "expected_unbound": counts["expected_unbound"],
        "pct_allowed": _pct(counts["allowed"], total),
        "users_blocked": len(users),
        "signins_blocked": len(signins),
    }


def code_table(requests: Iterable[Request]) -> list[dict[str, Any]]:
    """Per request, each status code of unbound requests: how many, under which mode, what it means and the fix.

    Expected-unbound requests (browser, unsupported platform) are counted apart in `expected_unbound`, so
    `unbound_requests = would_be_blocked + blocked + no_policy + expected_unbound`.
    """
    rows: dict[int, Counter[str]] = defaultdict(Counter)
    users: dict[int, set[str]] = defaultdict(set)
    signins: dict[int, set[str]] = defaultdict(set)
    for request in requests:
        if request.binding != Binding.UNBOUND:
            continue
        code = NO_CODE if request.code is None else request.code
        rows[code]["unbound"] += 1
        rows[code]["expected_unbound" if is_expected_unbound(request) else outcome(request) or "no_policy"] += 1
        users[code].add(request.user)
        signins[code].add(request.correlation_id)
    table = []
    for code, counts in rows.items():
        entry = describe(None if code == NO_CODE else code)
        table.append(
            {
                "code": None if code == NO_CODE else code,
                "meaning": entry.meaning,
                "fix": entry.fix,
                "self_remediable": code in SELF_REMEDIABLE,
                "unbound_requests": counts["unbound"],
                "would_be_blocked": counts["would_block"],
                "blocked": counts["blocked"],
                "no_policy": counts["no_policy"],
                "expected_unbound": counts["expected_unbound"],
                "users": len(users[code]),
                "signins": len(signins[code]),
            }
        )
    return sorted(table, key=lambda row: (-row["unbound_requests"], row["code"] if row["code"] is not None else -1))
