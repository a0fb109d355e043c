"""The on-call lookup: what happened in this sign-in, and is the watcher alive (issue 8).

Pure handlers over a small store protocol (`lookup_response`, `health_response`
return a status and a JSON-able body), thin `func.HttpRequest` adapters for the
Function triggers, and an in-memory store fed by the pipeline for replay and
tests. The correlation ID is validated with a strict pattern before any store
sees it, so nothing from the URL can reach an OData filter.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import azure.functions as func
import orjson

from .pipeline import Batch
from .readiness import merge
from .request import Request, iso
from .signin import SignIn
from .status_code import describe
from .store import ClockState
from .verdict import verdict_line

# GUIDs and the other ids Entra writes: letters, digits, '.', '_' and '-', at most 128. No quote, space,
# slash, '#', '?' or '%' can pass, so neither an OData operator nor a Table key character gets through.
_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
MAX_REQUEST_DETAILS = 50  # requests kept per sign-in; a real sign-in has a handful, a noisy one hundreds
ID_RULE = "a GUID or 1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-'"


def valid_correlation_id(value: object) -> bool:
    """True only for a GUID-like id; anything else is refused before a store query is built."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


class DetailStore(Protocol):
    """What the lookup and the stored report need from a sign-in store."""

    def get_signin_detail(self, correlation_id: str) -> dict[str, Any] | None:
        """The sign-in (`signin_detail` shape), or None when it is not stored."""
        ...

    def latest_event_time(self) -> float | None:
        """The event clock: the latest event time processed, seconds since the epoch."""
        ...

    def signin_details(self) -> Iterator[dict[str, Any]]:
        """Every stored sign-in, for the report over the store."""
        ...


# --- the stored shape: a verdict line plus a capped list of request details ---


def request_detail(request: Request) -> dict[str, Any]:
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


def signin_detail(signin: SignIn, requests: list[dict[str, Any]], final: bool) -> dict[str, Any]:
    """The sign-in's verdict line, its state, and its request details (capped, the earliest kept)."""
    kept = sorted(requests, key=lambda r: (r.get("time", ""), r.get("id", "")))[:MAX_REQUEST_DETAILS]
    return {
        **verdict_line(signin),
        "state": "final" if final else "open",
        "requests_kept": len(kept),
        "requests_truncated": len(signin.requests) > len(kept),
        "request_details": kept,
    }


# --- pure handlers ---


def lookup_response(store: DetailStore, correlation_id: object) -> tuple[int, dict[str, Any]]:
    """The sign-in's verdict and each request explained; 400 for a malformed id, 404 when not stored."""
    if not valid_correlation_id(correlation_id):
        return 400, {"error": "invalid correlation_id", "expected": ID_RULE}
    assert isinstance(correlation_id, str)
    try:
        detail = store.get_signin_detail(correlation_id)
    except Exception as error:  # a store outage is the server's problem, not the caller's
        return 503, {"error": "store unavailable", "reason": type(error).__name__}
    if detail is None:
        return 404, {"error": "sign-in not found", "correlation_id": correlation_id}
    return 200, explain(detail)


def explain(detail: dict[str, Any]) -> dict[str, Any]:
    """What on-call reads: each request's code with its meaning and fix, in time order."""
    requests = []
    for item in detail.get("request_details") or []:
        if isinstance(item, dict):
            code = item.get("code")
            entry = describe(code) if isinstance(code, int) and not isinstance(code, bool) else None
            requests.append({**item, "meaning": entry.meaning if entry else "", "fix": entry.fix if entry else ""})
    body = {k: v for k, v in detail.items() if k != "request_details"}
    body["request_details"] = sorted(requests, key=lambda r: (str(r.get("time", "")), str(r.get("id", ""))))
    return body


def health_response(store: DetailStore, now: float | None = None) -> tuple[int, dict[str, Any]]:
    """200 with the latest event time processed and how old it is; 503 when the store does not answer."""
    try:
        latest = store.latest_event_time()
    except Exception as error:
        return 503, {"status": "unhealthy", "store": "unreachable", "reason": type(error).__name__}
    now = time.time() if now is None else now
    return 200, {
        "status": "ok",
        "store": type(store).__name__,
        "latest_event_time": None if latest is None else iso(latest),
        "event_lag_seconds": None if latest is None else round(max(0.0, now - latest), 1),
    }


# --- the Functions adapters (the lead wires the triggers in function_app.py) ---


def json_response(status: int, body: dict[str, Any]) -> func.HttpResponse:
    return func.HttpResponse(
        body=orjson.dumps(body, default=str),
        status_code=status,
        mimetype="application/json",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def http_lookup(req: func.HttpRequest, store: DetailStore | Callable[[], DetailStore]) -> func.HttpResponse:
    """GET /api/signins/{correlation_id}: validate first, then ask the store."""
    correlation_id = req.route_params.get("correlation_id")
    if not valid_correlation_id(correlation_id):
        return json_response(*lookup_response(_NoStore(), correlation_id))
    try:
        resolved = _resolve(store)
    except Exception as error:  # the store could not even be opened: unavailable, not a server bug
        return json_response(503, {"error": "store unavailable", "reason": type(error).__name__})
    return json_response(*lookup_response(resolved, correlation_id))


def http_health(req: func.HttpRequest, store: DetailStore | Callable[[], DetailStore]) -> func.HttpResponse:
    """GET /api/health: the store answers, and the latest event time processed."""
    try:
        resolved = _resolve(store)
    except Exception as error:
        return json_response(503, {"status": "unhealthy", "store": "unreachable", "reason": type(error).__name__})
    return json_response(*health_response(resolved))


def _resolve(store: DetailStore | Callable[[], DetailStore]) -> DetailStore:
    return store if hasattr(store, "get_signin_detail") else store()  # type: ignore[operator,return-value]


class _NoStore:
    """Stands in when the id is refused: proves no store is touched for a malformed id."""

    def get_signin_detail(self, correlation_id: str) -> None:
        raise AssertionError("unreachable: the id was refused")

    def latest_event_time(self) -> None:
        return None

    def signin_details(self) -> Iterator[dict[str, Any]]:
        return iter(())


# --- links for alert cards and webhook payloads ---


def lookup_url(public_url: str | None, correlation_id: str) -> str | None:
    """The lookup URL of a sign-in, when the app's public URL is configured and the id is well-formed."""
    if not public_url or not valid_correlation_id(correlation_id):
        return None
    return f"{public_url.rstrip('/')}/api/signins/{quote(correlation_id, safe='')}"


def lookup_links(public_url: str | None, correlation_ids: list[str], limit: int = 3) -> dict[str, str]:
    """Alert.links entries ('Lookup 8b1f0c2e' -> URL) for an alert's example sign-ins (short: card buttons)."""
    links: dict[str, str] = {}
    for correlation_id in correlation_ids[:limit]:
        url = lookup_url(public_url, correlation_id)
        if url:
            title = f"Lookup {correlation_id[:8]}"
            links[title if title not in links else f"Lookup {correlation_id}"] = url
    return links


# --- the adapter over a SignInStore that keeps request details (shared.table_store.TableStore) ---


class SignInsWithDetails(Protocol):
    """The reading side of `TableStore`: a sign-in, its kept request details, all sign-ins, the clock."""

    def get(self, correlation_id: str) -> SignIn | None: ...

    def details(self, correlation_id: str) -> list[dict[str, Any]]: ...

    def signins(self) -> Iterator[SignIn]: ...

    def load_clock(self) -> ClockState | None: ...


@dataclass
class StoreDetails:
    """A `DetailStore` over the table store: its details normalised to the `request_detail` shape."""

    store: SignInsWithDetails

    def get_signin_detail(self, correlation_id: str) -> dict[str, Any] | None:
        signin = self.store.get(correlation_id)
        if signin is None:
            return None
        return self._detail(signin)

    def _detail(self, signin: SignIn) -> dict[str, Any]:
        requests = [normal_request(d) for d in self.store.details(signin.correlation_id) if isinstance(d, dict)]
        # The store says 'final' per row; its SignIn says how often it was declared final. Settled once counts.
        return signin_detail(signin, requests, final=signin.finals > 0)

    def latest_event_time(self) -> float | None:
        state = self.store.load_clock()
        return None if state is None else state.watermark

    def signin_details(self) -> Iterator[dict[str, Any]]:
        """Every stored sign-in with its details (one extra read per sign-in: a report, not a hot path)."""
        for signin in self.store.signins():
            yield self._detail(signin)


def normal_request(detail: dict[str, Any]) -> dict[str, Any]:
    """A stored request detail in the `request_detail` shape: 'at' -> 'time', policy lists -> objects."""
    item = dict(detail)
    if "time" not in item and "at" in item:
        item["time"] = item.pop("at")
    policies = []
    for policy in item.get("policies") or []:
        if isinstance(policy, list | tuple) and len(policy) == 3:
            policies.append({"name": policy[0], "result": policy[1], "not_satisfied": bool(policy[2])})
        elif isinstance(policy, dict):
            policies.append(policy)
    item["policies"] = policies
    return item


# --- in-memory store for replay and tests ---


@dataclass
class MemoryDetails:
    """An Observer that keeps each sign-in's detail as the table store does; a `DetailStore` for tests."""

    signins: dict[str, SignIn] = field(default_factory=dict)
    requests: dict[str, dict[str, Request]] = field(default_factory=dict)
    final: set[str] = field(default_factory=set)
    clock: float | None = None

    def observe(self, batch: Batch) -> list[dict[str, Any]]:
        for request in batch.requests:
            kept = self.requests.setdefault(request.correlation_id, {})
            known = kept.get(request.id)
            if known is not None:
                kept[request.id] = merge(known, request)
            elif len(kept) < MAX_REQUEST_DETAILS:
                kept[request.id] = request
        for update in batch.updates:
            self.signins[update.signin.correlation_id] = update.signin
            if update.changed:
                self.final.discard(update.signin.correlation_id)
        for signin in batch.finals:
            self.signins[signin.correlation_id] = signin
            self.final.add(signin.correlation_id)
        if batch.clock is not None:
            self.clock = batch.clock if self.clock is None else max(self.clock, batch.clock)
        return []

    def get_signin_detail(self, correlation_id: str) -> dict[str, Any] | None:
        signin = self.signins.get(correlation_id)
        if signin is None:
            return None
        requests = [request_detail(r) for r in self.requests.get(correlation_id, {}).values()]
        return signin_detail(signin, requests, correlation_id in self.final)

    def latest_event_time(self) -> float | None:
        return self.clock

    def signin_details(self) -> Iterator[dict[str, Any]]:
        for correlation_id in list(self.signins):
            detail = self.get_signin_detail(correlation_id)
            if detail is not None:
                yield detail
