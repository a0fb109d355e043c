"""What replay and report say about their input: shapes, what was rejected and why, and their exit codes."""

from __future__ import annotations

import io
from pathlib import Path

import orjson

from shared.cli.main import main
from tests.support.shapes import corpus, la_csv

ENTRA_CSV = (
    b'"Date (UTC)","Request ID","Correlation ID","User"\r\n"2025-06-03T14:05:58Z","r1","c1","ana@contoso.com"\r\n'
)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out), out.getvalue()


def test_the_portals_csv_download_is_named_and_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "InteractiveSignIns_2025-06-03_2025-06-04.csv"
    path.write_bytes(ENTRA_CSV)
    code, out = run("report", str(path), "--format", "json", "--html", str(tmp_path / "r.html"))
    assert code == 3
    section = orjson.loads(out)["input"]
    assert section["inputs"][0]["shape"] == "entra-portal-csv"
    (reason,) = section["rejected_by_reason"]
    assert "no per-policy Conditional Access data" in reason
    assert section["mostly_rejected"] and section["expected_shapes"]
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<h2>Input" in page and "Most of the input could not be read" in page


def test_text_that_is_no_log_exits_3_and_names_the_shapes_bindwatch_reads(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are\nnot sign-in logs\n")
    code, out = run("replay", str(path))
    assert code == 3
    assert "2 rejected (message is not JSON: 2)" in out
    assert "bindwatch reads:" in out and "Log Analytics / Sentinel rows" in out


def test_a_mostly_read_input_exits_0_and_counts_what_it_rejected(tmp_path: Path) -> None:
    data = la_csv(corpus(signins=5))
    head, *rows = data.split(b"\r\n")
    path = tmp_path / "export.csv"
    written = b"\r\n".join([head, *rows[:-1], b'"broken,"""', b""])
    path.write_bytes(written)
    rejected = tmp_path / "rejected.jsonl"
    code, out = run("replay", str(path), "--format", "jsonl", "--rejected", str(rejected))
    summary = orjson.loads(out.splitlines()[-1])
    assert code == 0 and summary["records"] > 0
    assert summary["inputs"][0]["shape"] == "log-analytics-csv" and summary["inputs"][0]["sorted_by_time"]
    lines = [orjson.loads(line) for line in rejected.read_bytes().splitlines()]
    assert summary["rejected"] == len(lines) == 1
    line = written[: written.index(b'"broken')].count(b"\n") + 1  # cells span lines: count them
    assert lines[0]["raw"] == '"broken,"""\r' and lines[0]["source"] == f"{path}:{line}"


def test_report_text_shows_the_input_section(tmp_path: Path) -> None:
    code, out = run("report", "samples")
    assert code == 0
    assert "read: samples/01-rollout.jsonl (eventhub: 55 items)" in out
    assert "5 rejected (message is not JSON: 1" in out
    assert "14 skipped (AuditLogs: 1, ServicePrincipalSignInLogs: 13)" in out
