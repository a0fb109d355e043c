"""Calling the HTTP functions as the host calls them, with the worker reading a store the test chose."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from shared.functions import http as functions_http
from shared.functions.worker import Worker


def call(function: Any, req: func.HttpRequest, store: Any) -> func.HttpResponse:
    """`store` is a DetailStore, or a callable standing for opening one (it may raise: the store is down)."""
    worker = Worker()
    if hasattr(store, "get_signin_detail"):
        worker.use(details=store)
    else:
        worker.details = store  # type: ignore[method-assign]
    original = functions_http.WORKER
    functions_http.WORKER = worker
    try:
        return function.build().get_user_function()(req)
    finally:
        functions_http.WORKER = original


def http_lookup(req: func.HttpRequest, store: Any) -> func.HttpResponse:
    return call(functions_http.signin_lookup, req, store)


def http_health(req: func.HttpRequest, store: Any) -> func.HttpResponse:
    return call(functions_http.health, req, store)
