"""The one request-detail codec: a judged request as a plain dict (stored, shown, reported) and back.

The sign-in table keeps a few request details per sign-in for the on-call lookup;
the lookup shows them; the report over the store reads them back as requests.
All three go through `encode` and `decode`, so the shape is defined once. `decode`
also reads the older shape (`at` for the time, policies as `[name, result,
not_satisfied]` lists, no binding) that earlier versions stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .binding import Binding, Enforcement, strongest
from .request import Request
from .timestamp import iso, parse_time

_BINDINGS = {"bound": Binding.BOUND, "unbound": Binding.UNBOUND}


def encode(request: Request) -> dict[str, Any]:
    """One request as stored and shown: time, app, resource, binding, code, device, client, policy results."""
    return {
        "id": request.id,
        "time": iso(request.at),
        "app": request.app,
        "resource": request.resource,
        "binding": request.binding.label,
        "enforcement": request.enforcement.label,
        "code": request.code,
        "os": request.os,
        "trust_type": request.trust_type,
        "client_app": request.client_app,
        "browser": request.browser,
        "device_id": request.device_id,
        "category": request.category,
        "policies": [{"name": n, "result": r, "not_satisfied": s} for n, r, s in request.policies],
    }


def decode(item: Mapping[str, Any], correlation_id: str, *, index: int = 0, user: str = "", at: float = 0.0) -> Request:
    """A stored or shown detail back as a request; `user` and `at` stand in where the detail has none."""
    policies = _policies(item.get("policies"))
    code = item.get("code")
    return Request(
        id=str(item.get("id") or f"{correlation_id}#{index}"),
        correlation_id=correlation_id,
        category=str(item.get("category") or ""),
        at=parse_time(item.get("time") or item.get("at")) or at,
        binding=_BINDINGS.get(str(item.get("binding") or "").lower(), Binding.NOT_EVALUATED),
        enforcement=_enforcement(item.get("enforcement"), policies),
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        user=str(item.get("user") or user),
        app=str(item.get("app") or ""),
        resource=str(item.get("resource") or ""),
        os=str(item.get("os") or item.get("device_os") or ""),
        trust_type=str(item.get("trust_type") or ""),
        client_app=str(item.get("client_app") or ""),
        device_id=str(item.get("device_id") or ""),
        browser=str(item.get("browser") or ""),
        policies=policies,
    )


def with_state(item: Mapping[str, Any], binding: Binding, enforcement: Enforcement, code: int | None) -> dict[str, Any]:
    """A detail with the binding, enforcement and code its sign-in's merged state holds (copies merged)."""
    return {**item, "binding": binding.label, "enforcement": enforcement.label, "code": code}


def _policies(raw: Any) -> tuple[tuple[str, str, bool], ...]:
    found = []
    for policy in raw if isinstance(raw, list) else ():
        if isinstance(policy, Mapping):
            name, result, blocked = policy.get("name", ""), policy.get("result", ""), policy.get("not_satisfied")
        elif isinstance(policy, list | tuple) and len(policy) == 3:
            name, result, blocked = policy
        else:
            continue
        found.append((str(name), str(result).lower(), bool(blocked)))
    return tuple(found)


def _enforcement(label: Any, policies: tuple[tuple[str, str, bool], ...]) -> Enforcement:
    if isinstance(label, str) and label in ("none", "report_only", "enforced"):
        return Enforcement.from_label(label)
    return strongest(result for _, result, _ in policies)
