"""The HTTP functions: the on-call lookup of one sign-in, and health for probes.

Thin adapters over the pure handlers in `shared.views.lookup`. Both read the
sign-in table only; a malformed ID is refused before any store is opened.
"""

# No `from __future__ import annotations`: the Python worker reads these signatures' annotations as types.

from collections.abc import Iterator
from typing import Any

import azure.functions as func
import orjson

from shared.core.correlation import valid_correlation_id
from shared.views.lookup import health_response, lookup_response

from .worker import WORKER

bp = func.Blueprint()


@bp.route(route="signins/{correlation_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def signin_lookup(req: func.HttpRequest) -> func.HttpResponse:
    """On-call: the verdict and every request of one sign-in."""
    correlation_id = req.route_params.get("correlation_id")
    if not valid_correlation_id(correlation_id):
        return json_response(*lookup_response(_NoStore(), correlation_id))
    try:
        store = WORKER.details()
    except Exception as error:  # the store could not even be opened: unavailable, not a server bug
        return json_response(503, {"error": "store unavailable", "reason": type(error).__name__})
    return json_response(*lookup_response(store, correlation_id))


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """The store answers; the latest event time processed."""
    try:
        store = WORKER.details()
    except Exception as error:
        return json_response(503, {"status": "unhealthy", "store": "unreachable", "reason": type(error).__name__})
    return json_response(*health_response(store))


def json_response(status: int, body: dict[str, Any]) -> func.HttpResponse:
    return func.HttpResponse(
        body=orjson.dumps(body, default=str),
        status_code=status,
        mimetype="application/json",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


class _NoStore:
    """Stands in when the id is refused: proves no store is touched for a malformed id."""

    def get_signin_detail(self, correlation_id: str) -> None:
        raise AssertionError("unreachable: the id was refused")

    def latest_event_time(self) -> None:
        return None

    def signin_details(self) -> Iterator[dict[str, Any]]:
        return iter(())
