"""Replay delivers its alerts to the configured destinations, waits (bounded), and fails if any stayed undelivered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pytest_httpserver import HTTPServer

ROOT = Path(__file__).resolve().parents[2]


def replay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "shared", "replay", "samples/02-burst.jsonl", "--format", "jsonl", *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        timeout=300,
        env={"PATH": os.environ.get("PATH", "/usr/bin"), **env},
    )


def test_replay_sends_each_incident_to_the_webhook_once_and_its_end_once(httpserver: HTTPServer) -> None:
    """Every alert decided reaches the webhook inside its incident's notifications: the incident opening (with the
    alerts firing by then) and its resolve (with every alert it held). Before incidents, each decision was sent."""
    httpserver.expect_request("/hook", method="POST").respond_with_data("", status=202)
    result = replay({"ALERT_WEBHOOK_URL": httpserver.url_for("/hook")})
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    alerts = [line for line in lines if line["type"] == "alert"]
    incidents = {line["incident"] for line in alerts}
    bodies = [json.loads(request.get_data())["data"] for request, _ in httpserver.log]
    assert alerts and "" not in incidents
    told = sorted((body["incident"]["id"], body["incident"]["reason"]) for body in bodies)
    assert told == sorted((i, reason) for i in incidents for reason in ("opened", "resolved"))
    resolved = {a["fingerprint"] for body in bodies if body["status"] == "resolved" for a in body["alerts"]}
    assert resolved == {line["fingerprint"] for line in alerts}
    assert lines[-1]["deliveries"]["failed"] == 0


def test_replay_exits_non_zero_when_a_destination_refuses(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("bad payload", status=400)
    result = replay({"ALERT_WEBHOOK_URL": httpserver.url_for("/hook")}, "--deliver-timeout", "5")
    assert result.returncode == 1
    assert "not delivered (failed)" in result.stderr.decode()
    assert httpserver.url_for("/hook") not in result.stderr.decode()  # a webhook URL is a secret
