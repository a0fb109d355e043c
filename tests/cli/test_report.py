"""`report`: the command's input and output, and an HTML page that hostile log values cannot break."""

from __future__ import annotations

import argparse
import html
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.cli import report
from shared.core.binding import Binding, Enforcement
from shared.core.request import Request
from shared.ingest.files import InputError, messages_from
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.ingest.replay import Replay
from shared.settings import ConfigurationError, load_settings
from shared.synth.records import BASE_TIME
from shared.views.lookup import MemoryDetails
from shared.views.readiness import Readiness, figures
from shared.views.report_html import render, timeline_svg
from shared.views.verdicts import SignInView

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    report.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def run(argv: list[str], **kw: Any) -> tuple[int, str]:
    out = io.StringIO()
    code = report.run(parse(["report", *argv]), load_settings(), out, **kw)
    return code, out.getvalue()


def replay_summary() -> dict[str, Any]:
    replay = Replay(Pipeline(MemoryStore(), 600.0))
    for _ in replay.run(messages_from([str(SAMPLES)])):
        pass
    return replay.summary()


def test_json_totals_agree_with_replay_on_samples() -> None:
    code, out = run([str(SAMPLES), "--format", "json"])
    assert code == 0
    result = orjson.loads(out)
    summary = replay_summary()
    signins = result["signins"]
    assert result["type"] == "readiness"
    assert {k: signins[k] for k in ("bound", "unbound", "unevaluated")} == {
        k: summary[k] for k in ("bound", "unbound", "unevaluated")
    }
    assert signins["judged"] == summary["signins"]
    assert result["requests"]["distinct"] == summary["requests"]
    assert result["requests"]["unit"] == "request"
    assert signins["unit"] == "sign-in"
    assert result["users"]["unit"] == "user"


def test_html_file_and_text_summary(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    code, out = run([str(SAMPLES), "--html", str(target)])
    assert code == 0
    summary = replay_summary()
    assert out.splitlines()[0].startswith(f"{summary['signins']} sign-ins judged: {summary['bound']} bound")
    assert f"report written to {target}" in out
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert f"<b>{summary['signins']:,}</b><span>sign-ins judged</span>" in page
    assert "A token protection policy is evaluated for browser clients" in page
    assert "<svg" in page


def test_page_fetches_nothing_and_runs_nothing(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    run([str(SAMPLES), "--html", str(target), "--format", "json"])
    page = target.read_text(encoding="utf-8").lower()
    for needle in ("<script", " src=", "@import", "url(", "<link", "<iframe", "<object", "<img"):
        assert needle not in page, needle
    # The one link is to the CSV written beside the page (a relative file name: a click, never a fetch).
    assert re.findall(r" href='([^']*)'", page) == ["report.would-break.csv"]
    assert (tmp_path / "report.would-break.csv").is_file()
    assert "content-security-policy" in page
    assert "default-src 'none'" in page


def test_store_table_reads_the_stored_details() -> None:
    details = MemoryDetails()
    replay = Replay(Pipeline(MemoryStore(), 600.0, observers=[details]))
    for _ in replay.run(messages_from([str(SAMPLES)])):
        pass
    code, out = run(["--store", "table", "--format", "json"], open_store=lambda _settings: details)
    assert code == 0
    result = orjson.loads(out)
    summary = replay.summary()
    assert result["signins"]["judged"] == summary["signins"]
    assert result["signins"]["unbound"] == summary["unbound"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "at least one PATH"),
        (["--store", "table", "samples"], "give no PATH"),
        (["samples", "--settle-minutes", "0"], "above 0"),
    ],
)
def test_bad_arguments(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        run(argv, open_store=lambda _settings: MemoryDetails())


def test_missing_path() -> None:
    with pytest.raises(InputError, match="no such file"):
        run(["/nonexistent/signins.jsonl"])


def test_empty_input_renders(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    target = tmp_path / "r.html"
    code, out = run([str(empty), "--html", str(target), "--format", "json"])
    assert code == 3  # nothing could be judged: the page and the figures are still written
    assert orjson.loads(out)["signins"]["judged"] == 0
    assert "No sign-ins in the period." in target.read_text(encoding="utf-8")


def test_timeline_bars_stack_to_the_bucket_total() -> None:
    timeline = {
        "bucket_seconds": 300,
        "buckets": [
            {"start": "2026-03-10T08:00:00.000Z", "bound": 6, "unbound": 2, "expected_unbound": 1, "unevaluated": 3}
        ],
    }
    svg = timeline_svg(timeline)
    assert svg.count("<rect") == 4
    assert "6 bound, 3 unevaluated, 1 unbound, expected" in svg
    assert ">08:00<" in svg


# --- hostile log values never break the page ---


class Structure(HTMLParser):
    """Collects the tags and attribute names of a page, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def structure(page: str) -> Structure:
    parser = Structure()
    parser.feed(page)
    parser.close()
    return parser


def hostile_figures(value: str) -> dict[str, Any]:
    """Every log-sourced field set to `value`, in a request that fires both policy hints and the tables."""
    request = Request(
        id=value or "r",
        correlation_id=value or "c",
        category="SignInLogs",
        at=BASE_TIME.timestamp(),
        binding=Binding.UNBOUND,
        enforcement=Enforcement.REPORT_ONLY,
        code=1002,
        user=value,
        app=value,
        resource=value + "x",
        os=value,
        trust_type=value,
        client_app="Browser",
        device_id=value,
        browser=value,
        policies=((value, "reportonlyfailure", True),),
    )
    native = Request(
        **{**{s: getattr(request, s) for s in Request.__slots__}, "id": "n", "client_app": value, "os": "Windows10"}
    )
    views = [SignInView(request.correlation_id, "unbound", "report_only", value, request.at, request.at)]
    views.append(SignInView("n-sign-in", "unbound", "report_only", value, request.at, request.at))
    return figures([request, native], views)


BASELINE = structure(render(hostile_figures("plain")))
PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    "</td></tr></table><h1>x</h1>",
    "<!--",
    "]]><![CDATA[",
    "&amp;&lt;",
    "javascript:alert(1)",
    "</style><style>body{display:none}</style>",
    "\u202e\u0000\ufeff",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.sampled_from(PAYLOADS), st.text(alphabet=st.characters(codec="utf-8"), max_size=60)))
def test_hostile_strings_are_escaped_and_add_no_markup(value: str) -> None:
    page = render(hostile_figures(value))
    parsed = structure(page)
    assert parsed.tags <= BASELINE.tags
    assert parsed.attrs <= BASELINE.attrs
    if value.strip():
        assert html.escape(value, quote=True) in page


def test_a_hostile_user_name_is_shown_as_text() -> None:
    payload = "<script>alert('x')</script>@contoso.com"
    page = render(hostile_figures(payload))
    assert "<script>" not in page
    assert payload in "".join(structure(page).text)


def test_the_readiness_observer_emits_no_lines() -> None:
    from shared.ingest.pipeline import Batch

    assert Readiness().observe(Batch(requests=[], updates=[], finals=[], clock=None)) == []
