"""Two real processes replay halves of a redelivered stream into one set of tables; `verdicts` exports the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.state import clean, redelivered, stream

ROOT = Path(__file__).resolve().parents[2]


def environment(connection: str, prefix: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    return {**keep, "STATE_STORAGE_CONNECTION": connection, "STATE_TABLE_PREFIX": prefix}


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "shared", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def finish(process: subprocess.Popen[bytes]) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()
    return out.decode()


def test_two_processes_on_halves_end_with_the_clean_verdicts(
    storage_connection: str, table_prefix: str, tmp_path: Path
) -> None:
    messages = stream(120, seed=13)
    expected, _ = clean(messages)
    doubled = redelivered(messages, seed=17)
    files = []
    for index in range(2):
        path = tmp_path / f"half{index}.jsonl"
        path.write_bytes(b"\n".join(m.body for m in doubled[index::2]) + b"\n")
        files.append(path)
    env = environment(storage_connection, table_prefix)
    writers = [start(["replay", str(f), "--store", "table", "--format", "jsonl", "--batch", "3"], env) for f in files]
    for writer in writers:
        finish(writer)
    exported = [json.loads(line) for line in finish(start(["verdicts", "--format", "jsonl"], env)).splitlines()]
    assert all(line["revision"] >= 1 for line in exported)  # every sign-in final
    for line in exported:
        line.pop("revision")
    assert {line["correlation_id"]: line for line in exported} == expected
    assert len(exported) == 120

    text = finish(start(["verdicts"], env))
    assert text.splitlines()[0].startswith("VERDICT") and text.rstrip().endswith("120 sign-ins")


def test_verdicts_without_storage_says_what_to_set(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    result = subprocess.run(
        [sys.executable, "-m", "shared", "verdicts"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "no storage for state" in result.stderr.decode()
