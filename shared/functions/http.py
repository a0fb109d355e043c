"""The HTTP functions: the on-call lookup of one sign-in, and health for probes.

Thin adapters over the pure handlers in `shared.views`. How the two are protected
(docs/lookup.md): the lookup is opened from a link in an alert card, which cannot
carry a function key, so it is anonymous to the Functions host and sits behind
App Service Authentication (Microsoft Entra ID sign-in, configured in
`infra/app/api.bicep`); the function checks the signed-in principal's role or
group again (`shared.views.access`). `health` is excluded from App Service
Authentication and keeps its function key, for probes. Both read the sign-in
table only; a malformed ID is refused before any store is opened.
"""

# No `from __future__ import annotations`: the Python worker reads these signatures' annotations as types.

from collections.abc import Iterator
from typing import Any

import azure.functions as func
import orjson

from shared.core.correlation import normalise_correlation_id, valid_correlation_id
from shared.views.access import PRINCIPAL_HEADER, check
from shared.views.lookup import health_response, lookup_response
from shared.views.lookup_html import CSP, prefers_json, render, render_error

from .worker import WORKER

bp = func.Blueprint()
_SAFE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


@bp.route(route="signins/{correlation_id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def signin_lookup(req: func.HttpRequest) -> func.HttpResponse:
    """On-call: the verdict and every request of one sign-in, as a page (or JSON when asked for)."""
    as_json = prefers_json(req.headers.get("accept"), req.params.get("format"))
    refusal = check(WORKER.access(), req.headers.get(PRINCIPAL_HEADER))
    if refusal is not None:
        return lookup_answer(refusal.status, {"error": refusal.reason}, as_json)
    correlation_id = normalise_correlation_id(req.route_params.get("correlation_id"))
    if not valid_correlation_id(correlation_id):
        return lookup_answer(*lookup_response(_NoStore(), correlation_id), as_json)
    try:
        store = WORKER.details()
    except Exception as error:  # the store could not even be opened: unavailable, not a server bug
        return lookup_answer(503, {"error": "store unavailable", "reason": type(error).__name__}, as_json)
    return lookup_answer(*lookup_response(store, correlation_id), as_json)


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """The store answers; the latest event time processed."""
    try:
        store = WORKER.details()
    except Exception as error:
        return json_response(503, {"status": "unhealthy", "store": "unreachable", "reason": type(error).__name__})
    return json_response(*health_response(store))


def lookup_answer(status: int, body: dict[str, Any], as_json: bool) -> func.HttpResponse:
    """The same answer as JSON or as a page; the page is locked down by its Content-Security-Policy."""
    if as_json:
        return json_response(status, body)
    page = render(body) if status == 200 else render_error(status, body)
    return func.HttpResponse(
        body=page.encode("utf-8"),
        status_code=status,
        mimetype="text/html",
        charset="utf-8",
        headers={**_SAFE_HEADERS, "Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "Vary": "Accept"},
    )


def json_response(status: int, body: dict[str, Any]) -> func.HttpResponse:
    return func.HttpResponse(
        body=orjson.dumps(body, default=str),
        status_code=status,
        mimetype="application/json",
        charset="utf-8",
        headers={**_SAFE_HEADERS, "Vary": "Accept"},
    )


class _NoStore:
    """Stands in when the id is refused: proves no store is touched for a malformed id."""

    def get_signin_detail(self, correlation_id: str) -> None:
        raise AssertionError("unreachable: the id was refused")

    def latest_event_time(self) -> None:
        return None

    def signin_details(self) -> Iterator[dict[str, Any]]:
        return iter(())
