"""The HTTP functions as the host calls them: function_app's routes over a real Azurite store."""

from __future__ import annotations

import json
from collections.abc import Iterator

import azure.functions as func
import pytest

from shared.core.message import Message
from shared.functions.http import health, signin_lookup
from shared.functions.worker import WORKER
from shared.ingest.pipeline import Pipeline
from shared.settings import current_settings
from shared.synth.records import body, record
from tests.support.http import ROLE, signed_in
from tests.support.state import table_store


@pytest.fixture
def stored(storage_connection: str, table_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A sign-in in the app's own table; the worker opens it from the settings, as in Azure."""
    store = table_store(storage_connection, table_prefix)
    pipeline = Pipeline(store, 600.0)
    pipeline.ingest([Message(body([record(correlation_id="c-1", status="unbound", code=1008)]))])
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection)
    monkeypatch.setenv("STATE_TABLE_PREFIX", table_prefix)
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")  # the platform's word that App Service Authentication is on
    monkeypatch.setenv("LOOKUP_ALLOWED_ROLE", ROLE)
    current_settings.cache_clear()
    WORKER.reset()
    yield
    WORKER.reset()
    current_settings.cache_clear()


def call(function: object, url: str, route_params: dict[str, str]) -> func.HttpResponse:
    request = signed_in(func.HttpRequest(method="GET", url=url, route_params=route_params, body=b""))
    return function.build().get_user_function()(request)  # type: ignore[attr-defined]


def test_lookup_route_returns_the_signin(stored: None) -> None:
    response = call(signin_lookup, "/api/signins/c-1", {"correlation_id": "c-1"})
    assert response.status_code == 200
    document = json.loads(response.get_body())
    assert document["verdict"] == "unbound"
    assert document["request_details"][0]["code"] == 1008
    assert "not evidence of token theft" in document["request_details"][0]["meaning"]


def test_lookup_route_refuses_a_malformed_id(stored: None) -> None:
    response = call(signin_lookup, "/api/signins/x", {"correlation_id": "x' or 1 eq 1"})
    assert response.status_code == 400


def test_health_route_reports_the_latest_event_time(stored: None) -> None:
    response = call(health, "/api/health", {})
    assert response.status_code == 200
    assert "2026-03-10" in response.get_body().decode()


def test_lookup_and_health_build_only_the_table_they_read(stored: None) -> None:
    assert call(signin_lookup, "/api/signins/c-1", {"correlation_id": "c-1"}).status_code == 200
    assert call(health, "/api/health", {}).status_code == 200
    assert WORKER._ingest is None  # no rules, destinations or detection tables were built for them
