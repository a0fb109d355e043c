"""The readiness report over a rollout with policy changes: each change marked, each policy before and after,
and the policy hints once per policy and trap."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from scripts import render_report
from shared.cli.report import from_files
from shared.synth import records, rollout
from shared.synth.records import body
from shared.views.report_html import render

PLAN = rollout.Rollout(report_only_hours=3)


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict:
    stream = tmp_path_factory.mktemp("rollout") / "rollout.jsonl"
    stream.write_bytes(b"\n".join(rollout.bodies(PLAN)) + b"\n")
    return from_files([str(stream)], settle_seconds=600.0)


def test_each_change_shows_its_policy_before_and_after(figures: dict) -> None:
    changes = figures["policy_changes"]
    assert [(c["policy"], c["action"], c["actor"]) for c in changes] == [
        (rollout.TP01, "switched On", "admin@contoso.com"),
        (rollout.TP02, "switched On", "secadmin@contoso.com"),
    ]
    first = changes[0]
    # Before: report-only, so would-be blocks and no blocks; after: blocks, and more of them (the breaking app).
    assert first["before"]["would_be_blocked"] > 0 and first["before"]["blocked"] == 0
    assert first["after"]["blocked"] > 0 and first["after"]["would_be_blocked"] == 0
    assert first["after"]["share"] > 2 * first["before"]["share"]
    assert first["before"]["requests"] + first["after"]["requests"] == _tp01_records()
    assert [m["label"] for m in figures["timeline"]["marks"]] == [
        f"{rollout.TP01} switched On",
        f"{rollout.TP02} switched On",
    ]


def _tp01_records() -> int:
    """Counted independently of the product: records of the stream whose policies name CA-TP01."""
    found = 0
    for raw in rollout.bodies(PLAN):
        for item in orjson.loads(raw)["records"]:
            applied = item.get("properties", {}).get("appliedConditionalAccessPolicies") or []
            found += any(p["displayName"] == rollout.TP01 for p in applied)
    return found


def test_hints_come_once_per_policy_and_trap_with_their_proof(tmp_path: Path) -> None:
    tp01 = records.policy(rollout.TP01, "reportOnlySuccess")
    tp02 = records.policy(rollout.TP02, "reportOnlySuccess")
    stream = [
        records.record(policies=[tp01], client_app="Browser", app="Microsoft Teams", user="a@contoso.com"),
        records.record(policies=[tp01, tp02], client_app="Browser", user="b@contoso.com"),
        records.record(policies=[tp02], user="c@contoso.com"),  # judged on Windows ...
        records.record(policies=[], user="c@contoso.com", os="Android 14", trust_type=""),  # ... unchecked here
        records.record(policies=[], user="nobody@contoso.com", os="Android 14", trust_type=""),  # never judged
    ]
    path = tmp_path / "traps.json"
    path.write_bytes(body(stream))
    hints = from_files([str(path)], settle_seconds=600.0)["hints"]
    found = sorted((h["kind"], h["policy"], h["requests"]) for h in hints)
    assert found == [
        ("browser", rollout.TP01, 2),
        ("browser", rollout.TP02, 1),
        ("unsupported_platform", rollout.TP02, 1),
    ]
    gap = next(h for h in hints if h["kind"] == "unsupported_platform")
    assert gap["examples"][0]["user"] == "c@contoso.com" and gap["targets"] == [["Android", 1]]


@pytest.mark.browser
def test_the_page_marks_the_changes_and_renders_cleanly(figures: dict, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(figures), encoding="utf-8")
    dom, console = render_report.chromium_render(page)
    assert console == []
    assert dom.count('class="mark"') == 2 or dom.count("class='mark'") == 2
    assert "<h2>Policy changes" in dom and "secadmin@contoso.com" in dom
