"""Regenerate docs/readiness-report.png: the readiness report of samples/, rendered by headless Chromium.

Run from the repository root: `.venv/bin/python -m scripts.render_report` (needs Debian's `chromium`).
It fails (exit 1) if the page logs anything to the browser console, so it doubles as a smoke test.
The tests import `chromium_render` from here.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from shared.cli.report import from_files
from shared.views.report_html import render

ROOT = Path(__file__).resolve().parent.parent

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--enable-logging=stderr",
    "--v=0",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise SystemExit("chromium is not installed: apt-get install -y chromium")
    return found


def chromium_render(page: Path, screenshot: Path | None = None, size: str = "1280,2600") -> tuple[str, list[str]]:
    """Open the page in headless Chromium: the DOM (or '' for a screenshot) and the console lines it logged."""
    with tempfile.TemporaryDirectory() as profile:
        action = [f"--screenshot={screenshot}", f"--window-size={size}"] if screenshot else ["--dump-dom"]
        done = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *action, page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    if done.returncode != 0:
        console.append(f"chromium exited with {done.returncode}")
    return done.stdout, console


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "readiness-report.png")
    parser.add_argument("--html", type=Path, help="also keep the HTML here")
    parser.add_argument("--size", default="1280,2600", help="window size of the screenshot, WIDTH,HEIGHT")
    args = parser.parse_args()
    page = render(from_files([str(ROOT / "samples")], settle_seconds=600.0))
    with tempfile.TemporaryDirectory() as tmp:
        target = args.html or Path(tmp) / "readiness-report.html"
        target.write_text(page, encoding="utf-8")
        _, console = chromium_render(target, args.out, args.size)
    for line in console:
        print(line, file=sys.stderr)
    print(f"wrote {args.out}")
    return 1 if console else 0


if __name__ == "__main__":
    sys.exit(main())
