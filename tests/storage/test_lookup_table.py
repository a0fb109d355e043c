"""The lookup and `report --store table` over the real table store (Azurite): the same answers as replay."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import azure.functions as func
import orjson

from shared.cli import report
from shared.ingest.files import messages_from
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.ingest.replay import Replay
from shared.settings import load_settings
from shared.views.lookup import StoreDetails
from shared.views.readiness import Readiness
from tests.support.http import http_health, http_lookup, signed_in
from tests.support.state import table_store

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def replay(store: object) -> tuple[Replay, dict[str, str]]:
    """The replay and each sign-in's last verdict line."""
    run = Replay(Pipeline(store, 600.0))  # type: ignore[arg-type]
    last: dict[str, str] = {}
    for outcome in run.run(messages_from([str(SAMPLES / "01-rollout.jsonl"), str(SAMPLES / "03-hazards.json")])):
        last.update((line["correlation_id"], line["verdict"]) for line in outcome.lines if line["type"] == "verdict")
    return run, last


def test_lookup_and_stored_report_over_the_table_store(storage_connection: str, table_prefix: str) -> None:
    store = table_store(storage_connection, table_prefix)
    stored, last_verdicts = replay(store)
    expected = replay(MemoryStore())[0].summary()
    assert stored.summary()["signins"] == expected["signins"]
    details = StoreDetails(store)

    for correlation_id, verdict in list(last_verdicts.items())[:25]:
        req = func.HttpRequest(
            method="GET", url="/api/signins/x", route_params={"correlation_id": correlation_id}, body=b""
        )
        response = http_lookup(signed_in(req), lambda: details)
        assert response.status_code == 200
        body = orjson.loads(response.get_body())
        assert body["verdict"] == verdict
        assert body["state"] == "final"
        assert len(body["request_details"]) == body["requests"]
        assert all(r["time"].startswith("2026-03-10T") for r in body["request_details"])
        assert all(r["binding"] in ("bound", "unbound", "not_evaluated") for r in body["request_details"])

    health = orjson.loads(http_health(func.HttpRequest(method="GET", url="/api/health", body=b""), details).get_body())
    assert health["latest_event_time"].startswith("2026-03-10T")

    parser = argparse.ArgumentParser()
    report.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", "--store", "table", "--format", "json"])
    out = io.StringIO()
    assert report.run(args, load_settings(), out, open_store=lambda _settings: details) == 0
    signins = orjson.loads(out.getvalue())["signins"]
    assert {k: signins[k] for k in ("bound", "unbound", "unevaluated")} == {
        k: expected[k] for k in ("bound", "unbound", "unevaluated")
    }
    assert signins["judged"] == expected["signins"]
    readiness = Readiness()
    run = Replay(Pipeline(MemoryStore(), 600.0, observers=[readiness]))
    for _ in run.run(messages_from([str(SAMPLES / "01-rollout.jsonl"), str(SAMPLES / "03-hazards.json")])):
        pass
    assert orjson.loads(out.getvalue()) == orjson.loads(orjson.dumps(readiness.figures()))
