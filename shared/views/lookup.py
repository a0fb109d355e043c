"""The on-call lookup: what happened in this sign-in, and is the watcher alive.

Pure handlers over a small store protocol (`lookup_response`, `health_response`
return a status and a JSON-able body); the HTTP functions that serve them are in
`shared.functions.http`. An in-memory store fed by the pipeline serves replay and
tests. The correlation ID is validated with a strict pattern before any store
sees it, so nothing from the URL can reach an OData filter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.core.clock import ClockState
from shared.core.correlation import ID_RULE, normalise_correlation_id, valid_correlation_id
from shared.core.detail import decode, encode
from shared.core.links import ENTRA_SIGNIN_LOGS, signin_kql
from shared.core.policy_change import PolicyChange
from shared.core.request import Request, merge_copies
from shared.core.signin import SignIn
from shared.core.status_code import describe
from shared.core.timestamp import iso
from shared.core.verdict import verdict_line
from shared.ingest.pipeline import Batch

MAX_REQUEST_DETAILS = 50  # requests kept per sign-in; a real sign-in has a handful, a noisy one hundreds


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


# --- the shape shown: a verdict line plus a capped list of request details (core/detail.py) ---


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
    """The sign-in's verdict and each request explained; 400 for a malformed id, 404 when not stored.

    The id is normalised first (braces, spaces, upper case: the forms people paste), then validated.
    """
    correlation_id = normalise_correlation_id(correlation_id)
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
    cid = str(detail.get("correlation_id", ""))
    body["kql"] = signin_kql(cid, detail.get("first_seen"), detail.get("last_seen"))
    body["links"] = {"Entra sign-in logs": ENTRA_SIGNIN_LOGS}
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


# --- the adapter over a SignInStore that keeps request details (shared.storage.signin_table.TableStore) ---


class SignInsWithDetails(Protocol):
    """The reading side of `TableStore`: a sign-in, its kept request details, all sign-ins, the clock."""

    def get(self, correlation_id: str) -> SignIn | None: ...

    def details(self, correlation_id: str) -> list[dict[str, Any]]: ...

    def signins(self) -> Iterator[SignIn]: ...

    def load_clock(self) -> ClockState | None: ...


@dataclass
class StoreDetails:
    """A `DetailStore` over the table store: its details normalised to the `request_detail` shape; for the report,
    with the token protection policy changes the function kept (`changes`)."""

    store: SignInsWithDetails
    changes: Callable[[float], list[PolicyChange]] | None = None

    def policy_changes(self) -> list[PolicyChange]:
        return self.changes(0.0) if self.changes is not None else []

    def get_signin_detail(self, correlation_id: str) -> dict[str, Any] | None:
        signin = self.store.get(correlation_id)
        if signin is None:
            return None
        return self._detail(signin)

    def _detail(self, signin: SignIn) -> dict[str, Any]:
        cid = signin.correlation_id
        stored = [d for d in self.store.details(cid) if isinstance(d, dict)]
        requests = [encode(decode(d, cid, index=i)) for i, d in enumerate(stored)]
        # The store says 'final' per row; its SignIn says how often it was declared final. Settled once counts.
        return signin_detail(signin, requests, final=signin.finals > 0)

    def latest_event_time(self) -> float | None:
        state = self.store.load_clock()
        return None if state is None else state.watermark

    def signin_details(self) -> Iterator[dict[str, Any]]:
        """Every stored sign-in with its details (one extra read per sign-in: a report, not a hot path)."""
        for signin in self.store.signins():
            yield self._detail(signin)


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
                kept[request.id] = merge_copies(known, request)
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
        requests = [encode(r) for r in self.requests.get(correlation_id, {}).values()]
        return signin_detail(signin, requests, correlation_id in self.final)

    def latest_event_time(self) -> float | None:
        return self.clock

    def signin_details(self) -> Iterator[dict[str, Any]]:
        for correlation_id in list(self.signins):
            detail = self.get_signin_detail(correlation_id)
            if detail is not None:
                yield detail
