"""`python -m shared replay`: the contract people and our checks rely on, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.synth.records import body, record

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "shared", *args],
        check=False,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        timeout=120,
        env=env,
    )


def lines(output: bytes) -> list[dict]:
    return [json.loads(line) for line in output.decode().splitlines() if line.strip()]


def test_jsonl_contract_on_the_samples() -> None:
    result = run("replay", "samples", "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    out = lines(result.stdout)
    assert out[-1]["type"] == "summary"
    verdicts = [line for line in out if line["type"] == "verdict"]
    for line in verdicts:
        for key in ("correlation_id", "verdict", "requests", "unbound_requests", "status_codes", "enforcement", "user"):
            assert key in line
        assert line["status_codes"] == sorted(set(line["status_codes"]))
        assert line["verdict"] in {"bound", "unbound", "unevaluated"}
    summary = out[-1]
    assert summary["signins"] == len({v["correlation_id"] for v in verdicts})
    assert summary["unbound"] == sum(1 for v in verdicts if v["verdict"] == "unbound" and v["revision"] == 1)
    assert summary["rejected"] == 5 and summary["skipped"] > 0 and summary["duplicates"] > 0
    # Every rejection is named on standard error.
    assert result.stderr.decode().count("rejected (") == summary["rejected"]


def test_hazards_sample_is_judged_as_documented() -> None:
    out = lines(run("replay", "samples/03-hazards.json", "--format", "jsonl").stdout)
    by_user = {line["user"]: line for line in out if line["type"] == "verdict"}
    assert by_user["legacy@contoso.com"]["verdict"] == "unbound"
    assert by_user["legacy@contoso.com"]["enforcement"] == "enforced"
    assert by_user["stringcode@contoso.com"]["status_codes"] == [1003]
    assert by_user["ustime@contoso.com"]["first_seen"].startswith("2026-03-10T11:21:07")
    assert by_user["oldos@contoso.com"]["status_codes"] == [1006]
    assert by_user["unevaluated@contoso.com"]["verdict"] == "unevaluated"
    assert by_user["notapplied@contoso.com"]["verdict"] == "unevaluated"
    assert out[-1]["skipped"] == 1


def test_stdin_and_one_body_per_line(tmp_path: Path) -> None:
    data = body([record(correlation_id="a", status="bound")]) + b"\n\n" + body([record(correlation_id="b")]) + b"\n"
    out = lines(run("replay", "-", "--format", "jsonl", stdin=data).stdout)
    assert sorted(line["correlation_id"] for line in out if line["type"] == "verdict") == ["a", "b"]
    assert out[-1]["messages"] == 2


def test_directory_in_name_order_and_rejected_file(tmp_path: Path) -> None:
    (tmp_path / "b.jsonl").write_bytes(body([record(correlation_id="second")]) + b"\nnot json\n")
    (tmp_path / "a.json").write_text(json.dumps({"records": [record(correlation_id="first")]}, indent=2))
    rejected = tmp_path / "rejected.jsonl"
    result = run("replay", str(tmp_path), "--format", "jsonl", "--rejected", str(rejected))
    out = lines(result.stdout)
    assert [line["correlation_id"] for line in out if line["type"] == "verdict"] == ["first", "second"]
    (dead,) = lines(rejected.read_bytes())
    assert dead["reason"] == "message is not JSON" and dead["raw"] == "not json"
    assert dead["source"].endswith("b.jsonl:2")


def test_table_format_is_for_people() -> None:
    result = run("replay", "samples/03-hazards.json")
    text = result.stdout.decode()
    assert result.returncode == 0
    assert "VERDICT" in text and "legacy@contoso.com" in text and "sign-ins from" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay", "no/such/file.jsonl"], "no such file or directory: no/such/file.jsonl"),
        (["replay"], "give at least one PATH ('-' for standard input) or --from-storage URL"),
        (["replay", "samples", "--format", "xml"], "invalid choice"),
        (["replay", "samples", "--batch", "0"], "must be at least 1"),
    ],
)
def test_bad_paths_and_arguments_exit_non_zero_with_a_message(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode != 0
    assert message in result.stderr.decode()


def test_a_bad_setting_stops_the_start_naming_it() -> None:
    env = {"PATH": "/usr/bin:/bin", "SETTLE_MINUTES": "soon"}
    result = run("replay", "samples/03-hazards.json", env=env)
    assert result.returncode == 2
    assert "setting SETTLE_MINUTES" in result.stderr.decode()
