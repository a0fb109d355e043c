"""The function as the host runs it: Event Hub events in, Table state on Azurite, alerts out to a real webhook."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import azure.functions as func
import pytest
from pytest_httpserver import HTTPServer

from shared.functions.ingest import ingest_signins
from shared.functions.timers import settle_signins
from shared.functions.worker import WORKER
from shared.settings import current_settings

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_" + base64.b64encode(b"end-to-end-test-secret-bytes").decode()


@pytest.fixture
def function_env(
    monkeypatch: pytest.MonkeyPatch, storage_connection: str, table_prefix: str, httpserver: HTTPServer
) -> Iterator[HTTPServer]:
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection)
    monkeypatch.setenv("STATE_TABLE_PREFIX", table_prefix)
    monkeypatch.setenv("REJECTED_CONTAINER", "rejected-" + table_prefix.lower())
    monkeypatch.setenv("ALERT_WEBHOOK_URL", httpserver.url_for("/alerts"))
    monkeypatch.setenv("ALERT_WEBHOOK_SECRET", SECRET)
    current_settings.cache_clear()
    WORKER.reset()
    yield httpserver
    WORKER.reset()
    current_settings.cache_clear()


def events_of(path: Path) -> list[func.EventHubEvent]:
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    return [
        func.EventHubEvent(body=b, sequence_number=i, offset=str(i * 1000), enqueued_time=at)
        for i, b in enumerate(lines)
    ]


def verify(request: object) -> dict:
    """Standard Webhooks, checked here from the spec (not with product code)."""
    headers = request.headers  # type: ignore[attr-defined]
    payload = request.get_data()  # type: ignore[attr-defined]
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + payload
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert f"v1,{expected}" in headers["webhook-signature"].split(" ")
    return json.loads(payload)


def test_burst_through_the_function_is_one_incident_opened_and_resolved_once(function_env: HTTPServer) -> None:
    function_env.expect_request("/alerts", method="POST").respond_with_data("", status=202)
    ingest = ingest_signins.build().get_user_function()
    events = events_of(ROOT / "samples" / "02-burst.jsonl")
    for start in range(0, len(events), 10):
        ingest(events[start : start + 10])
    settle_signins.build().get_user_function()(None)
    sent = [verify(request)["data"] for request, _ in function_env.log]
    assert [data["incident"]["reason"] for data in sent] == ["opened", "resolved"]  # one incident, told twice
    assert len({data["incident"]["id"] for data in sent}) == 1
    decisions = [(a["fingerprint"], a["status"]) for data in sent for a in data["alerts"]]
    assert len(decisions) == len(set(decisions))  # nothing sent twice
    firing = [a for a in sent[0]["alerts"] if a["status"] == "firing"]
    assert {a["group"]["app"] for a in firing if "app" in a["group"]} == {"Microsoft Teams"}
    # A redelivered invocation changes nothing and sends nothing more.
    before = len(function_env.log)
    ingest(events[:10])
    assert len(function_env.log) == before
