"""The Teams card: valid for the Adaptive Cards SDK at 1.4, always under the 20 KB budget, readable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core.alert import Alert, Notification
from shared.detect.incident import IncidentState, incident_id, join, notification, plan, told, update
from shared.notify import teams
from shared.synth.alerts import sample

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "scripts" / "validate_card.mjs"
KINDS = ("threshold", "spike", "ratio", "new")


def validate(tmp_path: Path, documents: dict[str, dict]) -> dict[str, list[str]]:
    """Run the SDK validator over each document; the problems it reports, by name."""
    files = []
    for name, document in documents.items():
        path = tmp_path / f"{name}.json"
        path.write_bytes(orjson.dumps(document))
        files.append(str(path))
    done = subprocess.run(
        ["node", str(VALIDATOR), *files], check=False, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(files), done.stderr
    return {Path(r["file"]).stem: r["problems"] for r in results}


def huge_alert() -> Alert:
    alert = sample("spike")
    alert.title = "T" * 5_000
    alert.summary = "S" * 50_000
    alert.group = {f"key{i}": "v" * 3_000 for i in range(40)}
    alert.top = {name: [(f"{name}-{i}-" + "x" * 200, i) for i in range(2_000)] for name in ("apps", "users", "x" * 500)}
    alert.codes = [{"code": 1000 + i, "meaning": "m" * 2_000, "fix": "f" * 2_000} for i in range(100)]
    alert.examples = [f"{i:08d}-" + "e" * 100 for i in range(1_000)]
    alert.kql = "K" * 100_000
    alert.links = {f"link {i}": "https://example.org/" + "l" * 5_000 for i in range(20)}
    return alert


def message(*alerts: Alert) -> dict:
    return teams.message(Notification("teams", list(alerts), 1_773_152_460.0), "https://bindwatch.contoso.example")


def test_every_card_is_valid_for_the_sdk_at_version_1_4(tmp_path: Path) -> None:
    documents = {f"{kind}-{status}": message(sample(kind, status)) for kind in KINDS for status in card_statuses()}
    documents["huge"] = message(huge_alert())
    documents["many"] = message(*[sample(KINDS[i % 4], card_statuses()[i % 2]) for i in range(60)])
    documents["mixed-huge"] = message(huge_alert(), sample("new", "resolved"), huge_alert())
    for reason in ("opened", "escalated", "repeated", "resolved"):
        documents[f"incident-{reason}"] = incident_card(reason)
    problems = validate(tmp_path, documents)
    assert problems == {name: [] for name in documents}
    for name, document in documents.items():
        assert teams.size(document) < teams.BUDGET_BYTES, name
        assert document["attachments"][0]["content"]["version"] == "1.4"


def card_statuses() -> tuple[str, str]:
    return ("firing", "resolved")


def incident_card(reason: str = "opened") -> dict:
    """What detection hands over for an incident holding a warning and a critical alert."""
    state = IncidentState(incident_id("x", 1_773_152_400.0), 1_773_152_400.0)
    for alert in (sample("ratio"), sample("spike")):  # the warning joined first
        alert.receivers = ["teams"]
        entry = {"fingerprint": alert.fingerprint + alert.kind, "rule": alert.rule, "severity": alert.severity}
        entry |= {"status": "firing", "receivers": ["teams"], "due_at": 0.0, "scope": [], "alert": alert.to_dict()}
        join(state, entry)
    if reason == "resolved":
        told(state, "teams", "opened", "critical", 1_773_152_460.0)
        for fingerprint, member in state.members.items():
            update(state, fingerprint, "resolved", member.alert or {}, 1_773_153_000.0)
    (made,) = plan(state, 1_773_153_100.0, 4 * 3600, 30, flush_all=True)
    made = type(made)(made.receiver, reason, made.severity, made.members)
    return teams.message(notification(state, made, 1_773_153_100.0), "https://bindwatch.contoso.example")


def test_an_incident_card_is_headed_by_the_highest_severity_it_holds() -> None:
    """Issue 12: a card holding a critical and a warning alert was headed WARNING."""
    body = incident_card()["attachments"][0]["content"]["body"]
    heading = body[0]["items"][0]
    assert heading["text"].startswith("CRITICAL · incident opened · 2 alerts")
    assert heading["color"] == "Attention"
    assert body[1]["items"][0]["items"][0]["text"].startswith("CRITICAL")  # the first alert is the critical one
    resolved = incident_card("resolved")["attachments"][0]["content"]["body"][0]["items"][0]
    assert resolved["text"].startswith("RESOLVED · incident over · 2 alerts · lasted")


def test_the_validator_rejects_what_teams_would_not_show(tmp_path: Path) -> None:
    """The SDK check must be able to fail: a 1.5 element, a 1.5 property, a bad enum, a wrong envelope."""
    good = message(sample("spike"))
    table = json.loads(json.dumps(good))
    table["attachments"][0]["content"]["body"].append({"type": "Table", "columns": [], "rows": []})
    heading = json.loads(json.dumps(good))
    heading["attachments"][0]["content"]["body"].append({"type": "TextBlock", "text": "x", "style": "heading"})
    colour = json.loads(json.dumps(good))
    colour["attachments"][0]["content"]["body"].append({"type": "TextBlock", "text": "x", "color": "Pink"})
    bare = {"text": "hello"}
    version = json.loads(json.dumps(good))
    version["attachments"][0]["content"]["version"] = "1.5"
    problems = validate(tmp_path, {"table": table, "heading": heading, "colour": colour, "bare": bare, "v": version})
    assert all(problems.values()), problems


def test_the_envelope_is_what_the_workflows_trigger_iterates() -> None:
    envelope = message(sample("spike"))
    assert envelope["type"] == "message"
    (attachment,) = envelope["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["type"] == "AdaptiveCard"
    assert attachment["content"]["msteams"] == {"width": "Full"}


def texts(document: dict) -> str:
    return orjson.dumps(document).decode()


def test_the_firing_card_shows_severity_enforcement_facts_tops_examples_and_the_sign_in_logs() -> None:
    alert = sample("spike")
    text = texts(message(alert))
    assert "CRITICAL · Report-only (would be blocked)" in text
    assert alert.title in text
    assert "42 (baseline 6)" in text
    assert "Top apps" in text and "Microsoft Outlook" in text
    assert alert.examples[0] in text
    assert "1008" in text and "Fix:" in text
    assert teams.ENTRA_SIGNIN_LOGS in text
    assert "KQL query" in text


def test_a_ratio_is_shown_as_a_share() -> None:
    assert "27.0 % (baseline 4.0 %)" in texts(message(sample("ratio")))


def test_a_resolved_alert_gets_its_own_smaller_card() -> None:
    firing, resolved = message(sample("spike")), message(sample("spike", "resolved"))
    assert teams.size(resolved) < teams.size(firing) / 2
    text = texts(resolved)
    assert "RESOLVED" in text and "45 min" in text
    assert "Top apps" not in text and "KQL query" not in text


def test_trimming_says_what_was_left_out() -> None:
    document = message(huge_alert())
    text = texts(document)
    assert teams.size(document) < teams.BUDGET_BYTES
    assert "of 2000" in text or "more alerts" in text or "not shown" in text


def test_many_alerts_are_listed_then_counted() -> None:
    alerts = [sample("spike") for _ in range(40)]
    for index, alert in enumerate(alerts):
        alert.fingerprint, alert.title = f"fp{index}", f"Alert number {index}"
    text = texts(message(*alerts))
    assert "more alerts in this notification" in text and "not listed" in text
    assert "Alert number 0" in text and "Alert number 39" not in text


def test_a_url_that_is_not_http_never_becomes_a_button() -> None:
    alert = sample("spike")
    alert.links = {"bad": "javascript:alert(1)", "lookup": "https://bindwatch.contoso.example/lookup?id=1"}
    text = texts(message(alert))
    assert "javascript:" not in text and "/lookup?id=1" in text


_text = st.text(max_size=3_000)
_alerts = st.builds(
    Alert,
    fingerprint=st.text(min_size=1, max_size=300),
    rule=_text,
    status=st.sampled_from(["firing", "resolved"]),
    at=st.floats(0, 4e9),
    title=_text,
    severity=st.sampled_from(["critical", "error", "warning", "info"]),
    enforcement=st.text(max_size=200),
    group=st.dictionaries(st.text(max_size=300), _text, max_size=20),
    starts_at=st.floats(0, 4e9),
    summary=st.text(max_size=30_000),
    kind=st.sampled_from(["threshold", "spike", "ratio", "new", "", "other"]),
    current=st.floats(-1e12, 1e12),
    baseline=st.none() | st.floats(-1e12, 1e12),
    window_seconds=st.floats(0, 1e7),
    signins=st.integers(0, 10**9),
    unbound=st.integers(0, 10**9),
    top=st.dictionaries(
        st.text(max_size=200), st.lists(st.tuples(_text, st.integers(0, 10**9)), max_size=300), max_size=6
    ),
    codes=st.lists(st.fixed_dictionaries({"code": st.integers(), "meaning": _text, "fix": _text}), max_size=30),
    examples=st.lists(st.text(max_size=500), max_size=200),
    kql=st.text(max_size=20_000),
    links=st.dictionaries(st.text(max_size=200), st.text(max_size=3_000).map(lambda s: "https://x.example/" + s)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(_alerts, min_size=1, max_size=30))
def test_any_alerts_fit_the_budget_as_valid_json(alerts: list[Alert]) -> None:
    document = teams.message(Notification("teams", alerts, 0.0))
    body = orjson.dumps(document)
    assert len(body) < teams.BUDGET_BYTES
    assert json.loads(body)["attachments"][0]["content"]["version"] == "1.4"


@pytest.mark.parametrize("limit", [1, 2, 10])
def test_clip_never_exceeds_the_limit(limit: int) -> None:
    assert len(teams.clip("x" * 50, limit)) == limit
    assert teams.clip("short", 10) == "short"


@pytest.mark.browser
def test_the_card_renders_in_headless_chromium(tmp_path: Path) -> None:
    """The README picture's pipeline: SDK in Chromium to a PNG (needs Debian's chromium: `make card` installs it)."""
    assert Path("/usr/bin/chromium").exists(), "install chromium (apt-get install -y chromium)"
    out = tmp_path / "card.png"
    done = subprocess.run(
        [sys.executable, "-m", "scripts.render_card", "--out", str(out), "--kind", "ratio"],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000  # a blank page is a few KB; the card has text on it


# --- names from the logs are text, never Markdown (issue 13, finding 8) ---

HOSTILE = "[Re-register here](https://evil.example) **now** _or_ <https://evil.example>"


def rendered_texts(document: dict) -> list[str]:
    """Every TextBlock and Fact, rendered as a CommonMark renderer (the Markdown Teams cards follow) shows it."""
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark")
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                found.append(renderer.render(str(node["text"])))
            for fact in node.get("facts", []) if node.get("type") == "FactSet" else []:
                found.extend([renderer.render(str(fact["title"])), renderer.render(str(fact["value"]))])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return found


def test_names_from_the_logs_never_become_links_or_formatting() -> None:
    alert = sample("spike")
    alert.title = f"Spike: {HOSTILE}"
    alert.group = {"app": HOSTILE}
    alert.top = {"apps": [(HOSTILE, 9)], "users": [("1. first", 2)], "platforms": [("- dash", 1)]}
    alert.examples = [HOSTILE]
    alert.summary = f"9 unbound sign-ins for {HOSTILE}."
    html = "\n".join(rendered_texts(message(alert)))
    assert "<a " not in html and "<em>" not in html and "<ol" not in html and "<ul" not in html
    assert "<strong>now</strong>" not in html
    assert html.count("[Re-register here](https://evil.example)") >= 4  # shown as typed, in every place
