"""The report in a real browser: Debian's headless Chromium renders it with no console message at all."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts import render_report
from shared.cli.report import from_files
from shared.views.report_html import render

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.browser  # headless Chromium (Debian's), installed by `make test`


def test_chromium_is_installed() -> None:
    assert shutil.which("chromium"), "install Debian's chromium: apt-get install -y chromium"


def test_the_samples_report_renders_without_console_errors(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(from_files([str(ROOT / "samples")], settle_seconds=600.0)), encoding="utf-8")
    dom, console = render_report.chromium_render(page)
    assert console == []
    assert "<h1>Token Protection readiness</h1>" in dom
    assert "<svg" in dom
    assert "A token protection policy is evaluated for browser clients" in dom


def test_the_detector_sees_a_page_that_reaches_the_network(tmp_path: Path) -> None:
    """Canary: the same check flags a CDN stylesheet and a script, so a clean result means something."""
    page = tmp_path / "bad.html"
    report = render(from_files([str(ROOT / "samples")], settle_seconds=600.0))
    bad = report.replace(
        "</head>",
        "<link rel='stylesheet' href='https://cdn.example.com/x.css'><script>console.error(1)</script></head>",
    )
    page.write_text(bad, encoding="utf-8")
    _, console = render_report.chromium_render(page)
    assert any("cdn.example.com" in line for line in console)
    assert len(console) >= 2


def test_screenshot(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(from_files([str(ROOT / "samples")], settle_seconds=600.0)), encoding="utf-8")
    png = tmp_path / "report.png"
    _, console = render_report.chromium_render(page, png, "1280,1600")
    assert console == []
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 50_000
