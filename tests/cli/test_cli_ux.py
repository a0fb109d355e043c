"""The commands as people run them: progress only on a terminal, bad output paths refused before any work, the
defaults in --help, and a replay that says what it is waiting for when a destination does not answer."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli.main import build_parser, main
from shared.cli.progress import Progress

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_records_rate_and_elapsed_on_a_terminal() -> None:
    ticks = iter([0.0, 1.0, 1.2, 2.0, 4.0])
    stream = Terminal()
    progress = Progress("replayed", stream=stream, clock=lambda: next(ticks))
    progress.update(1000)  # t=1.0: shown
    progress.update(1100)  # t=1.2: too soon, not shown
    progress.update(2000)  # t=2.0: shown
    progress.finish(4000)  # t=4.0
    text = stream.getvalue()
    assert "replayed 1,000 records, 1,000/s, 1.0 s" in text
    assert "1,100" not in text
    assert text.endswith("replayed 4,000 records, 1,000/s, 4.0 s\n")


def test_no_progress_when_the_output_is_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress("replayed", stream=stream)
    progress.update(10)
    progress.finish(10)
    assert stream.getvalue() == ""


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERT_", "RULES_"))}
    return subprocess.run(
        [sys.executable, "-m", "shared", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


def test_replay_prints_no_progress_into_a_pipe() -> None:
    done = run("replay", str(SAMPLES), "--format", "jsonl")
    assert done.returncode == 0
    assert "\r" not in done.stderr and "records/s" not in done.stderr and "/s, " not in done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "samples", "--html", "no-such-folder/report.html"], "--html no-such-folder/report.html: folder"),
        (["report", "samples", "--html", "docs"], "--html docs: is a folder"),
        (["replay", "samples", "--rejected", "no-such-folder/rejected.jsonl"], "--rejected no-such-folder/rej"),
        (["replay", "samples", "--rejected", "samples"], "--rejected samples: is a folder"),
    ],
)
def test_a_bad_output_path_is_one_line_and_exit_2_before_any_work(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    import shared.cli.report as report_module
    from shared.cli import replay as replay_module

    def no_work(*_: object, **__: object) -> None:
        raise AssertionError("the work started before the output path was checked")

    monkeypatch.setattr(report_module, "compute", no_work)
    monkeypatch.setattr(replay_module.compose, "replay_pipeline", no_work)
    out = io.StringIO()
    assert main(argv, out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert out.getvalue() == ""


def test_help_shows_the_defaults() -> None:
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    replay_help = commands["replay"].format_help()
    assert "(default: 120.0)" in replay_help and "(default: 10)" in replay_help and "(default: memory)" in replay_help
    report_help = commands["report"].format_help()
    assert "(default: 15)" in report_help and "(default: text)" in report_help
    assert "(default: None)" not in replay_help + report_help
    consume_help = commands["consume"].format_help()
    assert "(default: 100)" in consume_help and "(default: earliest)" in consume_help


def test_replay_says_what_it_waits_for_when_a_destination_is_unreachable() -> None:
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env_url = f"http://127.0.0.1:{port}/hook"
    done = subprocess.run(
        [sys.executable, "-m", "shared", "replay", "samples/02-burst.jsonl", "--format", "jsonl",
         "--deliver-timeout", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin"), "ALERT_WEBHOOK_URL": env_url},
    )  # fmt: skip
    assert done.returncode == 1
    waiting = [line for line in done.stderr.splitlines() if line.startswith("bindwatch: waiting up to 2 s for ")]
    assert len(waiting) == 1, done.stderr[-2000:]
    assert "notification(s): connection refused (or no route to the host) to webhook" in waiting[0]
    assert env_url not in done.stderr  # a webhook URL is a secret
