"""Policy hints: token protection policies set up in ways Microsoft warns against, proven by the requests.

Once per policy and trap: the policy evaluated for browser clients; evaluated for resources Token Protection
does not support (the sign of the 'Office 365' app group); and unsupported platforms left unchecked.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from shared.core.coverage import SUPPORTED_PLATFORMS, is_supported_resource, platform
from shared.core.request import Request
from shared.core.timestamp import iso
from shared.core.trap import TRAPS, traps_of

from .impact import outcome


def policy_hints(requests: Iterable[Request], examples: int = 5) -> list[dict[str, Any]]:
    """Misconfigured token protection policies, flagged once per policy and trap, each with the requests that
    prove it."""
    reqs = list(requests)
    found: dict[tuple[str, str], list[Request]] = defaultdict(list)
    for request in reqs:
        for name in _policies(request):
            for kind in traps_of(request):
                found[kind, name].append(request)
    for name, proof in platform_gaps(reqs).items():
        found["unsupported_platform", name] = proof
    return [_hint(kind, name, proof, examples) for (kind, name), proof in sorted(found.items())]


def platform_gaps(requests: list[Request]) -> dict[str, list[Request]]:
    """Sign-ins to the protected resources from platforms Token Protection does not support, that no token
    protection policy judged, by people a policy does judge on their other devices: nothing stops a token
    stolen there (or a device that claims such a platform), unless a policy blocks unknown platforms.
    Attributed to each policy that judges the same people."""
    judged: dict[str, set[str]] = defaultdict(set)  # user -> policies that judge them
    for request in requests:
        for name in _policies(request):
            judged[request.user].add(name)
    gaps: dict[str, list[Request]] = defaultdict(list)
    for request in requests:
        if request.policies or not request.resource or not is_supported_resource(request.resource):
            continue
        if platform(request.os) in SUPPORTED_PLATFORMS or request.user not in judged:
            continue
        for name in judged[request.user]:
            gaps[name].append(request)
    return gaps


def _policies(request: Request) -> list[str]:
    return sorted({name for name, _, _ in request.policies if name})


def _hint(kind: str, policy: str, proof: list[Request], examples: int) -> dict[str, Any]:
    proof.sort(key=lambda r: (outcome(r) == "allowed", r.at, r.id))
    return {
        "kind": kind,
        "policy": policy,
        "title": TRAPS[kind].title,
        "advice": TRAPS[kind].advice,
        "unit": "request",
        "requests": len(proof),
        "would_be_blocked": sum(1 for r in proof if outcome(r) == "would_block"),
        "blocked": sum(1 for r in proof if outcome(r) == "blocked"),
        "policies": [policy],
        "targets": [[n, c] for n, c in Counter(_hint_target(kind, r) for r in proof).most_common(10)],
        "examples": [_example(r) for r in _one_per_signin(proof)[:examples]],
    }


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
    if kind == "unsupported_platform":
        return platform(request.os)
    return request.resource


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
