"""Policy hints: token protection policies set up in ways Microsoft warns against, proven by the requests."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from shared.core.coverage import is_arm, is_browser, is_supported_resource
from shared.core.request import Request
from shared.core.timestamp import iso

from .impact import outcome


def policy_hints(requests: Iterable[Request], examples: int = 5) -> list[dict[str, Any]]:
    """Misconfigured token protection policies, proven by the requests they were evaluated for."""
    found: dict[str, list[Request]] = defaultdict(list)
    for request in requests:
        if not request.policies:
            continue
        if is_browser(request) and not is_arm(request.resource):
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
