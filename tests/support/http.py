"""Calling the HTTP functions as the host calls them, with the worker reading a store the test chose.

The lookup sits behind App Service Authentication: these helpers stand in for it by
setting the principal header it would set, for a caller holding the lookup's app role.
"""

from __future__ import annotations

import base64
from typing import Any

import azure.functions as func
import orjson

from shared.functions import http as functions_http
from shared.functions.worker import Worker
from shared.views.access import PRINCIPAL_HEADER, LookupAccess

ROLE = "Bindwatch.Lookup"
GROUP = "0b5c3a52-7d0e-4a59-9c1e-5a3f2d1e0c9b"
ACCESS = LookupAccess(auth_enabled=True, role=ROLE)


def principal_header(
    name: str = "oncall@contoso.com", roles: tuple[str, ...] = (ROLE,), groups: tuple[str, ...] = ()
) -> str:
    """The Base64 JSON App Service Authentication passes on (the shape Microsoft documents)."""
    claims = [{"typ": "preferred_username", "val": name}]
    claims += [{"typ": "roles", "val": r} for r in roles] + [{"typ": "groups", "val": g} for g in groups]
    document = {
        "auth_typ": "aad",
        "claims": claims,
        "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    }
    return base64.b64encode(orjson.dumps(document)).decode()


def request(
    url: str, route_params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> func.HttpRequest:
    return func.HttpRequest(method="GET", url=url, route_params=route_params or {}, headers=headers or {}, body=b"")


def signed_in(req: func.HttpRequest, accept: str | None = "application/json") -> func.HttpRequest:
    """The request as it reaches the function behind App Service Authentication, for an allowed caller."""
    headers = {PRINCIPAL_HEADER: principal_header(), **dict(req.headers)}
    if accept and "accept" not in headers:
        headers["accept"] = accept
    return func.HttpRequest(
        method=req.method, url=req.url, route_params=dict(req.route_params), params=dict(req.params),
        headers=headers, body=req.get_body(),
    )  # fmt: skip


def call(function: Any, req: func.HttpRequest, store: Any, access: LookupAccess = ACCESS) -> func.HttpResponse:
    """`store` is a DetailStore, or a callable standing for opening one (it may raise: the store is down)."""
    worker = Worker()
    if hasattr(store, "get_signin_detail"):
        worker.use(details=store, access=access)
    else:
        worker.use(access=access)
        worker.details = store  # type: ignore[method-assign]
    original = functions_http.WORKER
    functions_http.WORKER = worker
    try:
        return function.build().get_user_function()(req)
    finally:
        functions_http.WORKER = original


def http_lookup(req: func.HttpRequest, store: Any, access: LookupAccess = ACCESS) -> func.HttpResponse:
    return call(functions_http.signin_lookup, req, store, access)


def http_health(req: func.HttpRequest, store: Any) -> func.HttpResponse:
    return call(functions_http.health, req, store)
