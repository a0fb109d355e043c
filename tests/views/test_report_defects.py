"""Each defect issue 16 found on the readiness page, checked on the page Chromium renders and on its JSON.

The page is made by the command admins run (`report samples --html`), so the CSV beside it is checked too.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest

from scripts.render_report import chromium_render
from shared.cli.main import main
from shared.core.message import Message, Origin
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.ingest.replay import Replay
from shared.synth.records import BASE_TIME, body, policy, record
from shared.views.readiness import Readiness

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
pytestmark = pytest.mark.browser  # the page as headless Chromium renders it


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The page, the CSV and the JSON of samples/, as `python -m shared report` writes them."""
    folder = tmp_path_factory.mktemp("report")
    out = io.StringIO()
    assert main(["report", str(SAMPLES), "--html", str(folder / "report.html"), "--format", "json"], out) == 0
    return {
        "figures": orjson.loads(out.getvalue()),
        "page": folder / "report.html",
        "csv": folder / "report.would-break.csv",
    }


@pytest.fixture(scope="module")
def dom(made: dict[str, Any]) -> str:
    """The DOM headless Chromium builds from the page (no console message allowed)."""
    if not Path("/usr/bin/chromium").exists():
        pytest.fail("install Debian's chromium: apt-get install -y chromium")
    rendered, console = chromium_render(made["page"])
    assert console == []
    return rendered


class Rows(HTMLParser):
    """The text of each row of the table inside the element with `id`."""

    def __init__(self, section_id: str) -> None:
        super().__init__()
        self.section_id, self.depth, self.inside = section_id, 0, False
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if dict(attrs).get("id") == self.section_id:
            self.inside = True
        if self.inside and tag == "tr":
            self.rows.append([])
        if self.inside and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        if self.inside and tag == "table":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table_after(dom: str, heading: str) -> list[list[str]]:
    """Rows of the first table after the heading that contains `heading`."""
    start = dom.index(heading)
    table = dom[start : dom.index("</table>", start)]
    parser = Rows("x")
    parser.feed("<div id='x'>" + table[table.index("<table") :] + "</table></div>")
    return parser.rows


# --- "the by-platform table shows Android at 100.0% allowed, 0 would block" ---


def test_android_is_not_shown_as_allowed_in_the_platform_table(made: dict[str, Any], dom: str) -> None:
    figures = made["figures"]
    android = next(r for r in figures["breakdowns"]["platform"] if r["name"] == "Android")
    expected = next(r for r in figures["expected"]["by_reason"] if r["reason"] == "Unsupported platform: Android")
    assert android["expected_unbound"] == expected["requests"] > 0
    assert android["pct_allowed"] < 100.0
    assert (
        android["allowed"] + android["would_be_blocked"] + android["blocked"] + android["expected_unbound"]
        == (android["requests"])
    )
    rows = table_after(dom, "By device platform")
    header, *body = rows
    assert "Expected unbound" in header
    (shown,) = [r for r in body if r[0].startswith("Android")]
    assert "expected" in shown[0]  # marked in the name cell
    assert shown[header.index("Expected unbound")] == f"{expected['requests']:,}"
    assert shown[header.index("Allowed")] != "100.0%"


def test_browser_traffic_is_marked_in_the_client_app_table(made: dict[str, Any], dom: str) -> None:
    browser = next(r for r in made["figures"]["breakdowns"]["client_app"] if r["name"] == "Browser")
    assert browser["expected_unbound"] > 0 and browser["pct_allowed"] < 100.0
    header, *body = table_after(dom, "By client app")
    (shown,) = [r for r in body if r[0].startswith("Browser")]
    assert shown[header.index("Expected unbound")] == f"{browser['expected_unbound']:,}"


# --- "tiles show 57 blocked, 131 would be blocked and 48 expected side by side" ---


def test_the_tiles_add_up_visibly(made: dict[str, Any], dom: str) -> None:
    s = made["figures"]["signins"]
    assert s["bound"] + s["unbound"] + s["unevaluated"] == s["judged"]
    assert s["blocked"] + s["would_be_blocked"] + s["unbound_without_policy"] == s["unbound"]
    assert s["expected_unbound"] + s["actionable_unbound"] == s["unbound"]
    assert sum(s["expected_by_mode"].values()) == s["expected_unbound"]
    text = " ".join(re.sub(r"<[^>]+>", " ", dom).split())
    assert f"{s['unbound']} unbound = {s['blocked']} blocked (enforced) + {s['would_be_blocked']} would be" in text
    assert f"{s['unbound']} unbound = {s['expected_unbound']} expected + {s['actionable_unbound']} to act on" in text
    assert f"inside the blocked ({s['expected_by_mode']['blocked']})" in text
    assert "of the unbound: expected" in text


# --- "a warning when the period or a user's history is too short" ---


def test_a_short_period_is_warned_with_what_is_enough(made: dict[str, Any], dom: str) -> None:
    assert made["figures"]["evidence"]["enough"] is False
    warning = dom[dom.index('id="too-short"') :][:1500]
    assert "Too short to decide" in warning and "3.5 hours" in warning
    assert "at least 7 days" in warning and "weekly cycle" in warning
    assert "at least 5 sign-ins on at least 2 different days" in warning


def test_a_week_of_logs_is_not_warned() -> None:
    readiness = Readiness()
    allowed = [policy("CA-TP02", result="reportOnlySuccess")]
    records = [
        record(
            user=f"u{i % 3}@contoso.com",
            status="bound",
            code=0,
            policies=allowed,
            at=BASE_TIME + timedelta(hours=7 * i),
        )
        for i in range(30)
    ]
    run = Replay(Pipeline(MemoryStore(), 600.0, observers=[readiness]))
    for _ in run.run([Message(body(records), Origin(source="test"))]):
        pass
    figures = readiness.figures()
    assert figures["evidence"]["enough"] is True
    assert figures["users"]["ready_total"] == 3 and figures["users"]["too_little_history_total"] == 0
    from shared.views.report_html import render

    assert "id='too-short'" not in render(figures)


def test_one_signin_users_are_not_called_ready(made: dict[str, Any], dom: str) -> None:
    users = made["figures"]["users"]
    assert users["ready"] == []  # 3.5 hours: nobody has 5 sign-ins on 2 days
    little = {u["user"]: u for u in users["too_little_history"]}
    assert little["survivor@contoso.com"]["signins"] == 1
    ready_section = dom[dom.index('id="ready"') : dom.index('id="too-little"')]
    assert "survivor@contoso.com" not in ready_section and "None yet." in ready_section
    assert "survivor@contoso.com" in dom[dom.index('id="too-little"') :]


# --- "only 25 of 52 'would break' users appear" ---


def test_every_breaking_user_is_on_the_page_and_in_the_csv(made: dict[str, Any], dom: str) -> None:
    users = made["figures"]["users"]
    assert users["would_break_total"] == len(users["would_break"]) > 25
    parser = Rows("would-break")
    parser.feed(dom[dom.index('id="would-break"') - 4 :])
    page_users = {row[0] for row in parser.rows[1:]}
    assert page_users == {u["user"] for u in users["would_break"]}
    with made["csv"].open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["user"] for r in rows} == page_users
    assert "report.would-break.csv" in dom


# --- "a ready-to-paste device filter or exclusion per blocking cause, and a what-if line" ---


def test_each_blocking_cause_has_a_change_to_paste_and_a_what_if(made: dict[str, Any], dom: str) -> None:
    figures = made["figures"]
    causes = figures["causes"]
    assert sum(c["requests"] for c in causes) == figures["requests"]["block"]
    android = next(c for c in causes if c["kind"] == "platform" and c["platform"] == "Android")
    assert android["setting"] == "Conditions > Device platforms" and "Exclude: Android" in android["paste"]
    assert android["what_if"]["fixed"] is None  # a platform cannot be fixed on the device, only left out
    browser = next(c for c in causes if c["kind"] == "browser")
    assert "Mobile apps and desktop clients" in browser["paste"]
    by_device = [c for c in causes if c["paste"].startswith("device.deviceId -in [")]
    assert by_device and all(c["setting"].startswith("Conditions > Filter for devices") for c in by_device)
    req = figures["requests"]
    for cause in causes:
        excluded = cause["what_if"]["excluded"]
        assert excluded["pct_allowed"] == round(100 * req["allowed"] / (req["evaluated"] - cause["requests"]), 2)
    text = " ".join(re.sub(r"<[^>]+>", " ", dom).split())
    assert text.count("What if:") == len(causes)
    assert "Configure: Yes; Include: Windows, macOS, iOS; Exclude: Android" in text
    assert "Conditions &gt; Filter for devices" in dom or "Conditions > Filter for devices" in text
