"""Silences made from the command line stop a running function's notifications, and expire (issue 18).

The function is called as the host calls it (the blueprint functions function_app registers), over Azurite,
with a real local webhook receiver; the silences are made with `python -m shared silence` (its `main`) against
the same storage, as on-call would from a laptop.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from shared.app import silences as watch
from shared.cli.main import main
from shared.functions.ingest import ingest_signins
from shared.functions.timers import settle_signins
from shared.functions.worker import WORKER
from shared.settings import current_settings
from tests.functions.test_end_to_end import SECRET, events_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def function_env(
    monkeypatch: pytest.MonkeyPatch, storage_connection: str, table_prefix: str, httpserver: HTTPServer
) -> Iterator[HTTPServer]:
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection)
    monkeypatch.setenv("STATE_TABLE_PREFIX", table_prefix)
    monkeypatch.setenv("REJECTED_CONTAINER", "rejected-" + table_prefix.lower())
    monkeypatch.setenv("ALERT_WEBHOOK_URL", httpserver.url_for("/alerts"))
    monkeypatch.setenv("ALERT_WEBHOOK_SECRET", SECRET)
    monkeypatch.setattr(watch, "REFRESH_SECONDS", 0.0)  # the test does not wait the half minute between reads
    current_settings.cache_clear()
    WORKER.reset()
    httpserver.expect_request("/alerts", method="POST").respond_with_data("", status=202)
    yield httpserver
    WORKER.reset()
    current_settings.cache_clear()


def cli(*argv: str) -> str:
    out = io.StringIO()
    assert main(list(argv), stdout=out) == 0
    return out.getvalue()


def sent(server: HTTPServer) -> list[dict]:
    return [json.loads(request.get_data())["data"] for request, _ in server.log]


DURING = 30  # the sample's first 30 events end at 10:54, in the burst (10:40 to 10:55)


def run_burst(first: int = 0, stop: int | None = None) -> None:
    ingest = ingest_signins.build().get_user_function()
    events = events_of(ROOT / "samples" / "02-burst.jsonl")[first:stop]
    for start in range(0, len(events), 10):
        ingest(events[start : start + 10])


def test_a_silence_from_the_command_line_mutes_the_burst_then_expires(
    function_env: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    silence_id = cli(
        "silence", "add", "--match", 'app="Microsoft Teams"', "--for", "2h", "--reason", "known: Teams client bug",
        "--author", "oncall@contoso.com",
    ).strip()  # fmt: skip
    # Every alert of the burst is about Teams (the sample's own); a platform's alert mostly of Teams is not.
    listed = cli("silence", "list")
    assert silence_id in listed and 'app="Microsoft Teams"' in listed and "oncall@contoso.com" in listed
    with caplog.at_level(logging.INFO, logger="bindwatch"):
        run_burst(stop=DURING)
    told = sent(function_env)
    teams_alerts = [a for data in told for a in data["alerts"] if a["group"].get("app") == "Microsoft Teams"]
    assert teams_alerts == [], "a silenced alert was notified"
    assert '"silence_active"' in caplog.text and silence_id in caplog.text
    firing = cli("alerts")
    assert f"MUTED: silence {silence_id} by oncall@contoso.com" in firing
    assert "Microsoft Teams" in firing

    before = len(function_env.log)
    assert cli("silence", "expire", silence_id, "--author", "lead@contoso.com").startswith(silence_id)
    settle_signins.build().get_user_function()(None)  # the next minute's tick, on any instance
    teams = next(line for line in cli("alerts").splitlines() if "app=Microsoft Teams" in line)
    assert "MUTED" not in teams and "incident inc-" in teams  # released: it joined the open incident
    run_burst(first=DURING)  # the burst ends: the incident's end is told, now with the Teams alert in it
    ends = [data for data in sent(function_env)[before:] if data["incident"]["reason"] == "resolved"]
    assert ends and any(a["group"].get("app") == "Microsoft Teams" for a in ends[0]["alerts"])
    assert "expired by lead@contoso.com" in cli("silence", "list", "--all")
    assert cli("silence", "list").strip().endswith("0 silence(s)")


def test_a_silence_that_matches_nothing_changes_nothing(function_env: HTTPServer) -> None:
    cli("silence", "add", "--match", "app=Some Other App", "--for", "1h", "--reason", "r", "--author", "a")
    run_burst()
    told = sent(function_env)
    assert told and told[0]["incident"]["reason"] == "opened"


def test_bad_silence_arguments_stop_with_a_message(function_env: HTTPServer, capsys: pytest.CaptureFixture) -> None:
    assert main(["silence", "add", "--match", "colour=blue", "--for", "1h", "--reason", "r", "--author", "a"]) == 2
    assert "unknown label 'colour'" in capsys.readouterr().err
    assert main(["silence", "add", "--match", "app=x", "--for", "90d", "--reason", "r", "--author", "a"]) == 2
    assert "30 days" in capsys.readouterr().err
    assert main(["silence", "expire", "0123456789ab", "--author", "a"]) == 2
    assert "no silence 0123456789ab" in capsys.readouterr().err
