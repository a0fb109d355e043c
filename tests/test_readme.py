"""Every command README.md shows as runnable works in a fresh clone, without Azure.

Runnable means: a line of a fenced block marked `sh` in README.md. Blocks that need Azure or show a synopsis are
marked `bash` or `text` and are not run. The clone is the file set git would commit (tracked and untracked, not
ignored) copied to a temporary folder, so a file the commands need but git would not ship fails here. The virtual
environment and node_modules that `make` would install are linked in, and `make` is told not to rebuild them
(`-o`), because the `make test` running this test has just installed them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.browser  # `make card` and `make report-png` draw with headless Chromium

SKIP = {
    "make test": "it runs this test (recursion); CI and every developer run it anyway",
    "make test-pure": "it runs the test suite this test belongs to (recursion)",
    "make bench": "a measurement of several minutes, run by hand when the figures are refreshed",
    "make eval-detect": "a measurement of several minutes (three tenants, four days each) quoted in docs/rules.md; "
    "tests/detect/test_quiet_day.py and test_incident.py hold its properties on a smaller tenant",
    "make bench-storage": "a measurement of two minutes on Azurite, run by hand when the cost figures are refreshed",
}
INSTALLED = ("-o", ".venv/.stamp-deps", "-o", "node_modules/.stamp-deps")


def readme_commands(text: str) -> list[str]:
    """The command lines of the `sh` blocks: comments and continuation comments dropped."""
    commands = []
    for block in re.findall(r"(?ms)^```sh\n(.*?)^```", text):
        for line in block.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def fresh_clone(target: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for installed in (".venv", "node_modules", ".venv-checkov"):
        if (ROOT / installed).exists():
            (target / installed).symlink_to((ROOT / installed).resolve())
    return target


def test_the_readme_lists_the_commands_a_new_user_runs() -> None:
    commands = readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert "make demo" in commands and "make test" in commands
    assert any(c.startswith(".venv/bin/python -m shared report samples --html") for c in commands)
    assert set(SKIP) <= set(commands), "a skipped command is no longer in README.md: drop it from SKIP"


def test_every_readme_command_runs_in_a_fresh_clone(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path / "bindwatch")
    samples_before = {p.name: p.read_bytes() for p in (clone / "samples").iterdir()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERT_", "RULES_", "STATE_", "BINDWATCH_"))}
    ran = []
    for command in readme_commands((ROOT / "README.md").read_text(encoding="utf-8")):
        if command in SKIP:
            continue
        argv = (
            command.replace("make ", "make " + " ".join(INSTALLED) + " ", 1) if command.startswith("make ") else command
        )
        done = subprocess.run(
            argv, shell=True, cwd=clone, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}"
        ran.append(command)
    assert "make demo" in ran and len(ran) >= 8
    assert (clone / "report.html").is_file() and (clone / "report.would-break.csv").is_file()
    assert (clone / "verdicts.jsonl").stat().st_size > 0
    # `make samples` is deterministic: the committed samples are what it writes.
    assert {p.name: p.read_bytes() for p in (clone / "samples").iterdir()} == samples_before
