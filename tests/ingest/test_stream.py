"""`replay -` on an endless pipe: verdicts come out while the input is still flowing, and memory stays flat."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson

from shared.synth.records import BASE_TIME, policy, record

ROOT = Path(__file__).resolve().parents[2]
HANG_GUARD = 120  # seconds: only to fail instead of hanging forever; nothing here measures time


def stream(start: int, count: int) -> Iterator[bytes]:
    """Archive lines (one record each), one sign-in a second of event time, every tenth unbound."""
    template = record(correlation_id="CID", request_id="RID", status="bound", policies=[policy()], fillers=2)
    text = orjson.dumps(template).decode()
    stamp = template["properties"]["createdDateTime"]
    for n in range(start, start + count):
        at = (BASE_TIME + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"
        line = text.replace("CID", f"c{n:09d}").replace("RID", f"r{n:09d}").replace(stamp, at)
        if n % 10 == 0:
            line = line.replace('"signInSessionStatus":"bound"', '"signInSessionStatus":"unbound"')
        yield line.encode() + b"\n"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Child:
    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shared", "replay", "-", "--format", "jsonl", "--quiet", *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[dict] = []
        self.first_verdict = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = json.loads(raw)
            self.lines.append(line)
            if line["type"] == "verdict":
                self.first_verdict.set()

    def write(self, start: int, count: int) -> None:
        assert self.process.stdin is not None
        for chunk in stream(start, count):
            self.process.stdin.write(chunk)
        self.process.stdin.flush()

    def finish(self) -> tuple[int, bytes]:
        assert self.process.stdin is not None and self.process.stderr is not None
        self.process.stdin.close()
        code = self.process.wait(timeout=HANG_GUARD)
        self._reader.join(timeout=HANG_GUARD)
        return code, self.process.stderr.read()


def test_verdicts_flow_before_the_input_ends_and_memory_stays_flat() -> None:
    child = Child()
    child.write(0, 2_000)  # 33 minutes of event time: the first sign-ins are past the 10-minute settle window
    assert child.first_verdict.wait(HANG_GUARD), "no verdict while the input was still open"
    assert child.process.poll() is None  # still reading: the input has not ended
    child.write(2_000, 10_000)
    early = rss_kib(child.process.pid)
    child.write(12_000, 40_000)  # another ~150 MB through the pipe
    late = rss_kib(child.process.pid)
    code, stderr = child.finish()
    assert code == 0, stderr
    summary = child.lines[-1]
    assert summary["type"] == "summary" and summary["records"] == summary["signins"] == 52_000
    assert summary["unbound"] == 5_200
    assert late - early < 40 * 1024, f"memory grew from {early} KiB to {late} KiB"


def test_ctrl_c_settles_what_is_open_and_prints_the_summary_last() -> None:
    child = Child()
    child.write(0, 300)  # five minutes of event time: nothing has settled yet
    child.process.send_signal(signal.SIGINT)
    code = child.process.wait(timeout=HANG_GUARD)
    child._reader.join(timeout=HANG_GUARD)
    assert child.process.stderr is not None
    stderr = child.process.stderr.read().decode()
    assert code == 130 and "Traceback" not in stderr, stderr
    verdicts = [line for line in child.lines if line["type"] == "verdict"]
    assert child.lines[-1]["type"] == "summary"
    assert len(verdicts) == child.lines[-1]["signins"] == child.lines[-1]["records"] > 0
