"""The guardrail on the function's path: Table Storage on Azurite, two instances, every batch delivered twice.

A shorter rollout (two hours of report-only, then the two switches) goes through two ingest services built by
the composition root, as two Functions instances sharing the state tables would run, each batch delivered again
to the other instance (as the host does after a failure). The page and the "as predicted" message reach the
webhook once each, and the policies' stored counts equal a clean in-memory replay's.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from azure.data.tables import TableServiceClient
from pytest_httpserver import HTTPServer

from shared.app import compose
from shared.cli.main import main
from shared.core.message import Message, Origin
from shared.core.policy_change import policy_key
from shared.detect.guardrail import Guardrail
from shared.detect.guardrail_store import GuardrailState
from shared.ingest.memory_store import MemoryStore
from shared.settings import current_settings, load_settings
from shared.storage.guardrail_table import TableGuardrail
from shared.synth import rollout

PLAN = rollout.Rollout(report_only_hours=2)


@pytest.fixture
def instances(
    monkeypatch: pytest.MonkeyPatch, storage_connection: str, table_prefix: str, httpserver: HTTPServer
) -> Iterator[HTTPServer]:
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection)
    monkeypatch.setenv("STATE_TABLE_PREFIX", table_prefix)
    monkeypatch.setenv("REJECTED_CONTAINER", "rejected-" + table_prefix.lower())
    monkeypatch.setenv("ALERT_WEBHOOK_URL", httpserver.url_for("/alerts"))
    current_settings.cache_clear()
    httpserver.expect_request("/alerts", method="POST").respond_with_data("", status=202)
    yield httpserver
    current_settings.cache_clear()


def events() -> list[Message]:
    at = datetime(2026, 3, 10, 12, tzinfo=UTC).timestamp()
    return [
        Message(body, Origin(source="eventhub", partition="0", offset=str(i), sequence_number=i, enqueued_time=at))
        for i, body in enumerate(rollout.bodies(PLAN))
    ]


def test_two_instances_and_redelivery_page_once_and_count_exactly(
    instances: HTTPServer, storage_connection: str, table_prefix: str
) -> None:
    settings = load_settings()
    first, second = compose.ingest_service(settings), compose.ingest_service(settings)
    messages = events()
    for number, start in enumerate(range(0, len(messages), 10)):
        chunk = messages[start : start + 10]
        one, other = (first, second) if number % 2 else (second, first)
        one.ingest(chunk)
        other.ingest(chunk)  # the same events again, on the other instance
    sent = [json.loads(request.get_data())["data"] for request, _ in instances.log]
    told = [(a["title"], a["status"], (d["incident"] or {}).get("reason", "")) for d in sent for a in d["alerts"]]
    guardrail = [t for t in told if "Token protection switch" in t[0] or t[0].startswith("As predicted")]
    assert guardrail == [
        (f"Token protection switch: '{rollout.TP01}' blocks far beyond its prediction", "firing", "opened"),
        (f"As predicted: '{rollout.TP02}' switched On", "firing", ""),
    ]
    stored = TableGuardrail(TableServiceClient.from_connection_string(storage_connection), table_prefix).load(0.0)
    clean = replayed(messages)
    for name in (rollout.TP01, rollout.TP02):
        assert stored.policies[policy_key(name)].hours == clean.policies[policy_key(name)].hours
        assert stored.policies[policy_key(name)].causes == clean.policies[policy_key(name)].causes
    assert [c.id for c in stored.changes] == ["IPCGraph_tp01", "IPCGraph_tp02"]
    assert {w.status for w in stored.watches.values()} == {"paged", "predicted"}
    shown = io.StringIO()
    assert main(["guardrail"], stdout=shown) == 0  # what the rollout owner reads of the same state
    text = shown.getvalue()
    assert f"'{rollout.TP01}' switched On by admin@contoso.com: paged" in text
    assert f"'{rollout.TP02}' switched On by secadmin@contoso.com: predicted" in text
    assert f"likely cause app '{rollout.BREAKING_APP}'" in text
    assert f"  {rollout.TP02}: " in text and "would be or were blocked" in text


def replayed(messages: list[Message]) -> GuardrailState:
    """The same stream replayed once, in one process, in memory: what exact counts are."""
    pipeline = compose.replay_pipeline(load_settings(ALERT_WEBHOOK_URL=None), MemoryStore(), 600.0)
    guard = next(o for o in pipeline.observers if isinstance(o, Guardrail))
    for start in range(0, len(messages), 10):
        pipeline.ingest(messages[start : start + 10])
    return guard.store.load(0.0)
