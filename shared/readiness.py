"""Readiness figures: who would be blocked, why, and can we enforce now (issue 8).

A pure accumulator (an `Observer`) collects the judged requests and the final
sign-in verdicts; `figures()` turns them into one plain dict that the JSON output
and the HTML report both render. Every figure names its unit: Microsoft's impact
queries count **requests** (deduplicated by request id, signin-logs.md §9), while
bindwatch's verdict is per **sign-in** (correlation id). Nothing here does I/O.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .binding import ENFORCED_RESULTS, Binding, Enforcement
from .pipeline import Batch
from .request import Request, iso, parse_time
from .signin import BOUND, UNBOUND, UNEVALUATED, SignIn
from .status_code import describe

SELF_REMEDIABLE = frozenset({1003, 1004})  # Microsoft's IsSelfRemediable (signin-logs.md §9.4)
SUPPORTED_PLATFORMS = frozenset({"Windows", "macOS", "iOS/iPadOS"})
# Resources Token Protection supports (signin-logs.md §8.2), by display name and by the known app ids.
SUPPORTED_RESOURCE_NAMES = frozenset(
    {
        "office 365 exchange online",
        "exchange online",
        "office 365 sharepoint online",
        "sharepoint online",
        "microsoft teams services",
        "azure virtual desktop",
        "windows 365",
        "windows cloud login",
        "azure resource manager",
        "windows azure service management api",
    }
)
SUPPORTED_RESOURCE_IDS = frozenset(
    {
        "00000002-0000-0ff1-ce00-000000000000",  # Office 365 Exchange Online
        "00000003-0000-0ff1-ce00-000000000000",  # Office 365 SharePoint Online
        "797f4846-ba00-4fd7-ba43-dac1f8f63013",  # Azure Resource Manager
        "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe",  # Microsoft Teams Services ([U] in §8.2; names match too)
    }
)
_ARM = frozenset(
    {"azure resource manager", "windows azure service management api", "797f4846-ba00-4fd7-ba43-dac1f8f63013"}
)
_BROWSERS = ("edge", "chrome", "firefox", "safari", "opera", "internet explorer", "ie ", "samsung", "brave")
BREAKDOWNS = ("app", "resource", "platform", "client_app")
NO_CODE = -1  # the key of unbound requests without a status code

UNITS = {
    "request": "request: one row of the sign-in logs, copies merged (deduplicated by request id, as Microsoft's KQL)",
    "sign-in": "sign-in: all requests sharing a correlation id, one bindwatch verdict (the worst request wins)",
    "user": "user: judged by the verdicts of their sign-ins in the period",
}


# --- classification of one request (pure, shared with the HTML and the hints) ---


def platform(os_name: str) -> str:
    """The device platform family of `deviceDetail.operatingSystem` ('Ios 18.2.1' -> 'iOS/iPadOS')."""
    lowered = os_name.strip().lower()
    families = (
        ("windows", "Windows"),
        ("mac", "macOS"),
        ("os x", "macOS"),
        ("ios", "iOS/iPadOS"),
        ("ipados", "iOS/iPadOS"),
        ("android", "Android"),
        ("linux", "Linux"),
        ("chrome", "ChromeOS"),
    )
    for prefix, family in families:
        if lowered.startswith(prefix):
            return family
    return os_name.strip() or "Unknown"


def is_browser(request: Request) -> bool:
    """A browser client: `clientAppUsed` Browser, or a device detail that names a browser, not a rich client."""
    if request.client_app.strip().lower() == "browser":
        return True
    browser = request.browser.strip().lower()
    return bool(browser) and not browser.startswith("rich client") and browser.startswith(_BROWSERS)


def is_supported_resource(resource: str) -> bool:
    """True for a resource Token Protection supports, or when the record does not name one."""
    lowered = resource.strip().lower()
    return not lowered or lowered in SUPPORTED_RESOURCE_NAMES or lowered in SUPPORTED_RESOURCE_IDS


def expected_reason(request: Request) -> str | None:
    """Why this request is expected to be unbound (browser, unsupported platform), or None.

    Browsers reaching Azure Resource Manager are the supported browser preview, so not expected.
    """
    if is_browser(request) and request.resource.strip().lower() not in _ARM:
        return "Browser client"
    family = platform(request.os)
    if family not in SUPPORTED_PLATFORMS:
        return f"Unsupported platform: {family}"
    return None


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


def merge(old: Request, new: Request) -> Request:
    """Copies of one request: the worst binding with its code, the strongest enforcement (rule 6)."""
    worse = new.binding > old.binding or (new.binding == old.binding and old.code is None)
    base = new if worse else old
    policies = old.policies + tuple(p for p in new.policies if p not in old.policies)
    return replace(base, enforcement=max(old.enforcement, new.enforcement), policies=policies)


# --- sign-ins as the report sees them ---


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


@dataclass
class Readiness:
    """Observer: keeps every distinct request and each sign-in's latest final verdict (as replay's summary)."""

    requests: dict[str, Request] = field(default_factory=dict)
    signins: dict[str, SignInView] = field(default_factory=dict)

    def observe(self, batch: Batch) -> list[dict[str, Any]]:
        for request in batch.requests:
            known = self.requests.get(request.id)
            self.requests[request.id] = request if known is None else merge(known, request)
        for signin in batch.finals:
            self.signins[signin.correlation_id] = SignInView.of(signin)
        return []

    def figures(self, top: int = 15, limit: int = 200) -> dict[str, Any]:
        return figures(self.requests.values(), self.signins.values(), top=top, limit=limit)


# --- the stored sign-in details (shared.lookup's shape) as requests and sign-ins ---


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
        for index, item in enumerate(detail.get("request_details") or []):
            requests.append(_request_of(item, index, detail, first))
    return requests, signins


def _request_of(item: Mapping[str, Any], index: int, signin: Mapping[str, Any], fallback: float) -> Request:
    policies = tuple(
        (str(p.get("name", "")), str(p.get("result", "")).lower(), bool(p.get("not_satisfied")))
        for p in item.get("policies") or []
        if isinstance(p, Mapping)
    )
    code = item.get("code")
    cid = str(signin.get("correlation_id", ""))
    return Request(
        id=str(item.get("id") or f"{cid}#{index}"),
        correlation_id=cid,
        category=str(item.get("category", "")),
        at=parse_time(item.get("time")) or fallback,
        binding=_binding_of(str(item.get("binding", ""))),
        enforcement=_enforcement_of(policies),
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        user=str(item.get("user") or signin.get("user", "")),
        app=str(item.get("app", "")),
        resource=str(item.get("resource", "")),
        os=str(item.get("os") or item.get("device_os") or ""),
        trust_type=str(item.get("trust_type", "")),
        client_app=str(item.get("client_app", "")),
        device_id=str(item.get("device_id", "")),
        browser=str(item.get("browser", "")),
        policies=policies,
    )


def _binding_of(label: str) -> Binding:
    return {"bound": Binding.BOUND, "unbound": Binding.UNBOUND}.get(label.lower(), Binding.NOT_EVALUATED)


def _enforcement_of(policies: tuple[tuple[str, str, bool], ...]) -> Enforcement:
    best = Enforcement.NONE
    for _, result, _ in policies:
        if result in ENFORCED_RESULTS:
            return Enforcement.ENFORCED
        if result.startswith("reportonly"):
            best = Enforcement.REPORT_ONLY
    return best


# --- the figures ---


def figures(
    requests: Iterable[Request], signins: Iterable[SignInView], top: int = 15, limit: int = 200
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
    regular = [r for r in reqs if not (r.binding == Binding.UNBOUND and expected_reason(r))]
    return {
        "type": "readiness",
        "period": _period(views),
        "units": UNITS,
        "signins": _signin_totals(views, expected_ids),
        "requests": microsoft_figures(reqs),
        "timeline": timeline(views, expected_ids),
        "breakdowns": {key: breakdown(regular, _KEYS[key])[:top] for key in BREAKDOWNS},
        "codes": code_table(regular),
        "users": user_readiness(views, by_signin, expected_ids, limit),
        "expected": expected_traffic(reqs, expected_ids, top),
        "hints": policy_hints(reqs),
    }


def _all_expected(requests: list[Request]) -> bool:
    unbound = [r for r in requests if r.binding == Binding.UNBOUND]
    return bool(unbound) and all(expected_reason(r) for r in unbound)


def _period(views: list[SignInView]) -> dict[str, Any]:
    if not views:
        return {"start": None, "end": None, "seconds": 0.0}
    start = min(v.first_seen for v in views)
    end = max(v.last_seen for v in views)
    return {"start": iso(start), "end": iso(end), "seconds": round(end - start, 3)}


def _signin_totals(views: list[SignInView], expected_ids: set[str]) -> dict[str, Any]:
    """Per sign-in: the same counts as replay's summary, plus what enforcement did or would do."""
    verdicts = Counter(v.verdict for v in views)
    unbound = [v for v in views if v.verdict == UNBOUND]
    modes = Counter(v.enforcement for v in unbound)
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
        "users": len({v.user for v in views}),
    }


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def microsoft_figures(requests: Iterable[Request]) -> dict[str, Any]:
    """Microsoft's impact figures, per request (signin-logs.md §9.1 and §9.4), over every resource.

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


_STEPS = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 7 * 86400, 30 * 86400)


def bucket_seconds(span: float, most: int = 60) -> int:
    """The smallest round bucket that keeps the chart at `most` bars or fewer."""
    for step in _STEPS:
        if span / step <= most:
            return step
    return _STEPS[-1]


def timeline(views: list[SignInView], expected_ids: set[str]) -> dict[str, Any]:
    """Per sign-in, by the time of its first request: bound, unbound (apart: expected) and unevaluated."""
    if not views:
        return {"unit": "sign-in", "bucket_seconds": 0, "buckets": []}
    start = min(v.first_seen for v in views)
    step = bucket_seconds(max(v.first_seen for v in views) - start)
    origin = start - start % step
    rows: dict[int, Counter[str]] = defaultdict(Counter)
    for view in views:
        series = "expected_unbound" if view.correlation_id in expected_ids else view.verdict
        rows[int((view.first_seen - origin) // step)][series] += 1
    buckets = [
        {"start": iso(origin + i * step), **{s: rows[i][s] for s in (BOUND, UNBOUND, "expected_unbound", UNEVALUATED)}}
        for i in range(max(rows) + 1)
    ]
    return {"unit": "sign-in", "bucket_seconds": step, "buckets": buckets}


_KEYS: dict[str, Callable[[Request], str]] = {
    "app": lambda r: r.app or "(no app)",
    "resource": lambda r: r.resource or "(no resource)",
    "platform": lambda r: platform(r.os),
    "client_app": lambda r: r.client_app or "(not reported)",
}


def breakdown(requests: Iterable[Request], key: Callable[[Request], str]) -> list[dict[str, Any]]:
    """Per request under a token protection policy, grouped by `key`: blocked, would be blocked, allowed."""
    rows: dict[str, Counter[str]] = defaultdict(Counter)
    users: dict[str, set[str]] = defaultdict(set)
    signins: dict[str, set[str]] = defaultdict(set)
    for request in requests:
        result = outcome(request)
        if result is None:
            continue
        name = key(request)
        rows[name][result] += 1
        if result != "allowed":
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
        "pct_allowed": _pct(counts["allowed"], total),
        "users_blocked": len(users),
        "signins_blocked": len(signins),
    }


def code_table(requests: Iterable[Request]) -> list[dict[str, Any]]:
    """Per request, each status code of unbound requests: how many, under which mode, what it means and the fix."""
    rows: dict[int, Counter[str]] = defaultdict(Counter)
    users: dict[int, set[str]] = defaultdict(set)
    signins: dict[int, set[str]] = defaultdict(set)
    for request in requests:
        if request.binding != Binding.UNBOUND:
            continue
        code = NO_CODE if request.code is None else request.code
        rows[code]["unbound"] += 1
        rows[code][outcome(request) or "no_policy"] += 1
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
                "users": len(users[code]),
                "signins": len(signins[code]),
            }
        )
    return sorted(table, key=lambda row: (-row["unbound_requests"], row["code"] if row["code"] is not None else -1))


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


def expected_traffic(requests: Iterable[Request], expected_ids: set[str], top: int) -> dict[str, Any]:
    """Unbound requests that are expected (browsers, unsupported platforms), apart from the rest."""
    by_reason: dict[str, Counter[str]] = defaultdict(Counter)
    detail: dict[str, dict[str, set[Any]]] = defaultdict(lambda: defaultdict(set))
    total = 0
    for request in requests:
        reason = expected_reason(request) if request.binding == Binding.UNBOUND else None
        if reason is None:
            continue
        total += 1
        by_reason[reason][request.app or "(no app)"] += 1
        detail[reason]["users"].add(request.user)
        detail[reason]["signins"].add(request.correlation_id)
        detail[reason]["codes"].add(NO_CODE if request.code is None else request.code)
    rows = [
        {
            "reason": reason,
            "requests": sum(apps.values()),
            "signins": len(detail[reason]["signins"]),
            "users": len(detail[reason]["users"]),
            "codes": sorted(detail[reason]["codes"]),
            "apps": [[app, count] for app, count in apps.most_common(top)],
        }
        for reason, apps in by_reason.items()
    ]
    rows.sort(key=lambda row: (-row["requests"], row["reason"]))
    return {"unit": "request", "requests": total, "signins": len(expected_ids), "by_reason": rows}


def policy_hints(requests: Iterable[Request], examples: int = 5) -> list[dict[str, Any]]:
    """Misconfigured token protection policies, proven by the requests they were evaluated for."""
    found: dict[str, list[Request]] = defaultdict(list)
    for request in requests:
        if not request.policies:
            continue
        if is_browser(request) and request.resource.strip().lower() not in _ARM:
            found["browser"].append(request)
        if not is_supported_resource(request.resource):
            found["unsupported_resource"].append(request)
    hints = []
    for kind, proof in sorted(found.items()):
        proof.sort(key=lambda r: (outcome(r) == "allowed", r.at, r.id))
        hints.append(
            {
                "kind": kind,
                "title": _HINT_TITLES[kind],
                "advice": _HINT_ADVICE[kind],
                "unit": "request",
                "requests": len(proof),
                "would_be_blocked": sum(1 for r in proof if outcome(r) == "would_block"),
                "blocked": sum(1 for r in proof if outcome(r) == "blocked"),
                "policies": sorted({name for r in proof for name, _, _ in r.policies}),
                "targets": [[n, c] for n, c in Counter(_hint_target(kind, r) for r in proof).most_common(10)],
                "examples": [_example(r) for r in _one_per_signin(proof)[:examples]],
            }
        )
    return hints


def _one_per_signin(requests: list[Request]) -> list[Request]:
    """Proof from as many sign-ins as possible: the first request of each, blocked ones first."""
    seen: set[str] = set()
    picked = []
    for request in requests:
        if request.correlation_id not in seen:
            seen.add(request.correlation_id)
            picked.append(request)
    return picked


def _hint_target(kind: str, request: Request) -> str:
    if kind == "browser":
        return request.app or "(no app)"
    return request.resource


_HINT_TITLES = {
    "browser": "A token protection policy is evaluated for browser clients",
    "unsupported_resource": "A token protection policy is evaluated for resources Token Protection does not support",
}
_HINT_ADVICE = {
    "browser": "The policy's Client apps condition includes Browser. Token Protection supports native apps only "
    "(browsers only for Azure Resource Manager, in preview), so it blocks MSAL.js apps such as Teams Web. Set "
    "Client apps to 'Mobile apps and desktop clients' only.",
    "unsupported_resource": "The policy targets a resource outside Exchange Online, SharePoint Online, Teams "
    "Services (and AVD, Windows 365, Windows Cloud Login, Azure Resource Manager). That is a sign it targets the "
    "'Office 365' app group, which Microsoft says not to do. Target the supported resources by name.",
}


def _example(request: Request) -> dict[str, Any]:
    return {
        "time": iso(request.at),
        "user": request.user,
        "app": request.app,
        "resource": request.resource,
        "client_app": request.client_app,
        "os": request.os,
        "browser": request.browser,
        "policies": [{"name": n, "result": r, "not_satisfied": s} for n, r, s in request.policies],
        "correlation_id": request.correlation_id,
        "request_id": request.id,
    }
