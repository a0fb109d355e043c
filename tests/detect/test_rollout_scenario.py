"""The guardrail on a replayed rollout: a day in report-only, then two policies switched On.

`python -m shared replay` reads the stream (sign-ins and the AuditLogs records of the switches, one body a minute)
and delivers to a webhook, Teams and PagerDuty served locally. The first switch breaks one app far beyond what
report-only predicted: it must page within 5 minutes of event time, naming the change, its author, the app and
the way back. The second switch blocks what report-only said it would: one "as predicted" message, never to
PagerDuty. Alerts of the ordinary rules that began just after the first switch name it too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from shared.synth import rollout
from tests.notify.test_teams import validate

ROOT = Path(__file__).resolve().parents[2]
PLAN = rollout.Rollout()
SWITCH = PLAN.switch.timestamp()
SWITCH_TEXT = f"'{rollout.TP01}' was switched On by admin@contoso.com"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict[str, list[dict]]]:
    """Replay the rollout once, delivering to local receivers; the output lines and what each receiver got."""
    folder = tmp_path_factory.mktemp("rollout")
    stream = folder / "rollout.jsonl"
    stream.write_bytes(b"\n".join(rollout.bodies(PLAN)) + b"\n")
    server = HTTPServer()
    server.start()
    try:
        for path in ("/hook", "/teams", "/pagerduty"):
            server.expect_request(path, method="POST").respond_with_data("", status=202)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin"),
            "ALERT_WEBHOOK_URL": server.url_for("/hook"),
            "ALERT_TEAMS_WEBHOOK_URL": server.url_for("/teams"),
            "ALERT_PAGERDUTY_ROUTING_KEY": "R0UTINGKEY0000000000000000000000",
            "ALERT_PAGERDUTY_URL": server.url_for("/pagerduty"),
        }
        result = subprocess.run(
            [sys.executable, "-m", "shared", "replay", str(stream), "--format", "jsonl"],
            check=False,
            cwd=ROOT,
            capture_output=True,
            timeout=600,
            env=env,
        )
        assert result.returncode == 0, result.stderr.decode()[-3000:]
        received: dict[str, list[dict]] = {"/hook": [], "/teams": [], "/pagerduty": []}
        for request, _ in server.log:
            received[request.path].append(json.loads(request.get_data()))
    finally:
        server.clear()
        server.stop()
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    return lines, received


def guardrail_alerts(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["type"] == "alert" and line["rule"] == "token-protection-switch"]


def test_both_switches_are_read_from_the_audit_records(run: tuple[list[dict], dict]) -> None:
    lines, _ = run
    changes = [line for line in lines if line["type"] == "policy_change"]
    assert [(c["policy"], c["actor"], c["enforces_now"]) for c in changes] == [
        (rollout.TP01, "admin@contoso.com", True),
        (rollout.TP02, "secadmin@contoso.com", True),
    ]


def test_the_breaking_switch_pages_within_five_minutes_naming_change_author_cause_and_way_back(run) -> None:
    lines, _ = run
    pages = [a for a in guardrail_alerts(lines) if a["status"] == "firing" and a["severity"] == "critical"]
    assert len(pages) == 1
    page = pages[0]
    assert page["group"]["policy"] == rollout.TP01
    assert 0 <= _seconds(page["at"]) - SWITCH <= 300
    assert SWITCH_TEXT in page["change"] and "admin@contoso.com" in page["summary"]
    assert f"app '{rollout.BREAKING_APP}'" in page["summary"]
    assert page["way_back"][0] == f"Set '{rollout.TP01}' back to Report-only"
    assert rollout.BREAKING_APP in page["way_back"][1]


def test_the_page_reaches_pagerduty_the_webhook_and_teams_with_the_change(run) -> None:
    lines, received = run
    page = next(a for a in guardrail_alerts(lines) if a["severity"] == "critical")
    triggers = [e for e in received["/pagerduty"] if e["payload"]["custom_details"].get("change", "").startswith("'")]
    assert [e["event_action"] for e in triggers] == ["trigger"]
    assert triggers[0]["dedup_key"] == page["incident"]
    assert triggers[0]["payload"]["custom_details"]["way_back"] == page["way_back"]
    alerts = [a for body in received["/hook"] for a in body["data"]["alerts"]]
    hooked = [a for a in alerts if a["fingerprint"] == page["fingerprint"]]
    assert hooked and hooked[0]["change"] == page["change"] and hooked[0]["wayBack"] == page["way_back"]
    cards = [c for c in received["/teams"] if SWITCH_TEXT in json.dumps(c)]
    assert any("The way back" in json.dumps(card) for card in cards)


def test_the_cards_are_valid_for_the_adaptive_cards_sdk(run, tmp_path: Path) -> None:
    _, received = run
    cards = {f"card{i}": card for i, card in enumerate(received["/teams"])}
    assert cards
    assert validate(tmp_path, cards) == {name: [] for name in cards}


def test_the_matching_switch_gets_one_as_predicted_message_and_pagerduty_none(run) -> None:
    lines, received = run
    predicted = [a for a in guardrail_alerts(lines) if a["severity"] == "info"]
    assert [a["group"]["policy"] for a in predicted] == [rollout.TP02]
    assert predicted[0]["title"].startswith("As predicted")
    told = [b for b in received["/hook"] if any(a["title"].startswith("As predicted") for a in b["data"]["alerts"])]
    assert len(told) == 1
    assert not [e for e in received["/pagerduty"] if "As predicted" in e["payload"]["summary"]]


def test_ordinary_alerts_that_began_after_the_switch_name_it(run) -> None:
    lines, _ = run
    others = [line for line in lines if line["type"] == "alert" and line["rule"] != "token-protection-switch"]
    after = [a for a in others if a["status"] == "firing" and 0 <= _seconds(a["starts_at"]) - SWITCH <= 3600]
    assert after, "the breaking app should also trip the ordinary rules"
    assert all(a["change"].startswith("began ") and SWITCH_TEXT in a["change"] for a in after)
    before = [a for a in others if a["starts_at"] and _seconds(a["starts_at"]) < SWITCH]
    assert all(not a["change"] for a in before)


def _seconds(text: str) -> float:
    from shared.core.timestamp import parse_time

    value = parse_time(text)
    assert value is not None
    return value
