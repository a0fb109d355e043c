"""Upgrades keep detection state: rows of every older layout are read as decided, and a newer release's rows are
refused with one log line per kind, never misread and never overwritten.

`fixtures/detect2.json` is this layout, marked schema 2; `fixtures/detect1.json` is the layout from before the
detection rewrite (commit 10963f5, unmarked). Both were made by `python -m tests.support.capture_detection`: the
rows as the Table service returned them, the rules.toml that made them, and what that code read from them. What
this code does with each is written down in `shared/storage/detection_table.py` and in docs/deploy.md.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from shared.core.alert import Notification
from shared.core.schema import SCHEMA, Refused
from shared.core.timestamp import iso
from shared.detect.detector import Detector
from shared.detect.incident import IncidentState
from shared.detect.lifecycle import AlertState
from shared.detect.memory import GroupMemory, RuleState
from shared.detect.rules import RulesFile, load_rules
from shared.detect.window import Tally
from shared.ingest.pipeline import Batch
from shared.storage.detection_table import DETECTION, LEFT, TableDetectionStore, bucket_shard
from tests.support.capture_detection import minutes, read_answers, restore, write_rows

FIXTURES = Path(__file__).parent / "fixtures"
NEWER = DETECTION.version + 1


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


TODAY = fixture("detect2.json")
BEFORE = fixture("detect1.json")


def rows_of(made: dict[str, Any], change: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The fixture's rows, with some properties set (by RowKey; None deletes the property)."""
    rows = []
    for raw in made["rows"]:
        row = dict(raw)
        for name, value in (change or {}).get(raw["RowKey"], {}).items():
            if value is None:
                row.pop(name, None)
            else:
                row[name] = value
        rows.append(row)
    return rows


def refusals(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    found = [json.loads(r.getMessage().removeprefix("BINDWATCH ")) for r in caplog.records]
    return [line for line in found if line["event"] == "schema_refused"]


def rules_of(made: dict[str, Any], tmp_path: Path) -> RulesFile:
    """The rules that made the fixture's rows (the shipped rules.toml may have changed since)."""
    path = tmp_path / "rules.toml"
    path.write_text(made["rules"], encoding="utf-8")
    return load_rules(path)


def keys(made: dict[str, Any], prefix: str) -> list[str]:
    return [row["RowKey"] for row in made["rows"] if row["PartitionKey"] == "s" and row["RowKey"].startswith(prefix)]


def etag(store: TableDetectionStore, partition: str, row: str) -> str:
    return str(store.table.get_entity(partition, row).metadata["etag"])


# --- the fixtures are what they say ---


def test_the_fixtures_hold_every_kind_of_row_of_their_layout() -> None:
    today = {(r["PartitionKey"], r["RowKey"][:2]) for r in TODAY["rows"]}
    assert {("s", "r:"), ("s", "m:"), ("s", "a:"), ("s", "i:")} <= today
    assert all(r.get(SCHEMA) == 2 for r in TODAY["rows"])
    assert all(":" in r["RowKey"] for r in TODAY["rows"] if r["PartitionKey"] == "w")  # sharded
    assert TODAY["answers"]["live"]["alerts"] and TODAY["answers"]["live"]["incidents"]  # firing, in an incident
    assert BEFORE["commit"] == "10963f5" and not any(SCHEMA in r for r in BEFORE["rows"])
    assert all(len(r["RowKey"]) == 10 for r in BEFORE["rows"] if r["PartitionKey"] == "w")  # the minute alone
    assert any(json.loads(r["batches"]) for r in BEFORE["rows"] if r["PartitionKey"] == "w")
    assert any(json.loads(r["d0"])["seen"] for r in BEFORE["rows"] if r["RowKey"].startswith("r:"))
    assert all("outbox" in json.loads(r["d0"]) for r in BEFORE["rows"] if r["RowKey"].startswith("a:"))


def test_every_row_this_release_writes_is_marked(storage_connection: str, table_prefix: str, tmp_path: Path) -> None:
    """Bucket transactions, memory transactions, alert and incident creates and updates: all carry the mark."""
    rules = tmp_path / "rules.toml"
    rules.write_text(TODAY["rules"], encoding="utf-8")  # rules that make every kind of row
    write_rows(storage_connection, table_prefix, rules)
    table = TableServiceClient.from_connection_string(storage_connection).get_table_client(table_prefix + "detect")
    rows = list(table.list_entities())
    assert {(r["PartitionKey"], r["RowKey"][:2]) for r in rows} >= {("s", "r:"), ("s", "m:"), ("s", "a:"), ("s", "i:")}
    assert {r.get(SCHEMA) for r in rows} == {DETECTION.version}


# --- reading schema 2 and schema 1 ---


def test_rows_of_schema_2_read_as_the_code_that_wrote_them(storage_connection: str, table_prefix: str) -> None:
    rows = rows_of(TODAY)
    store = restore(storage_connection, table_prefix, rows)
    assert read_answers(store, rows) == TODAY["answers"]


def test_unmarked_rows_of_this_layout_are_schema_1_and_read_the_same(
    storage_connection: str, table_prefix: str
) -> None:
    """The rewrite wrote this layout before rows were marked: such rows read as the marked ones."""
    rows = rows_of(TODAY, {row["RowKey"]: {SCHEMA: None} for row in TODAY["rows"]})
    store = restore(storage_connection, table_prefix, rows)
    assert read_answers(store, rows) == TODAY["answers"]


def test_rows_from_before_the_rewrite_read_as_that_release_read_them(
    storage_connection: str, table_prefix: str
) -> None:
    rows = rows_of(BEFORE)
    store = restore(storage_connection, table_prefix, rows)
    read = read_answers(store, rows)
    then = BEFORE["answers"]
    # Window counts: the same, each group with an empty user sketch (the old rows counted no people).
    assert read["buckets"] == {
        minute: {rule: {key: [*counts, []] for key, counts in groups.items()} for rule, groups in bucket.items()}
        for minute, bucket in then["buckets"].items()
    }
    # Rule memory: warm-up as it was; a `new` rule's episodes as legacy, for the detector to move into shards.
    live = store.load_states()
    assert {name: [s.started, s.legacy, s.learnt, s.population] for name, s in live.rules.items()} == {
        name: [old["started"], old["seen"], None, None] for name, old in then["live"]["rules"].items()
    }
    assert not live.memory and not live.incidents
    # Alert states: every field they shared as it was; what incidents hold now starts empty.
    shared = ("fingerprint", "rule", "group", "status", "starts_at", "fired_at", "false_since", "expected")
    assert {fp: {k: v for k, v in a.items() if k in shared} for fp, a in read["live"]["alerts"].items()} == {
        fp: {k: v for k, v in a.items() if k in shared} for fp, a in then["live"]["alerts"].items()
    }
    assert all(
        [a["incident"], a["held"], a["severity"]] == [None, False, None] for a in read["live"]["alerts"].values()
    )
    one_by_one = {f"a:{fp}": a for fp, a in read["live"]["alerts"].items()}
    assert read["rows"] == one_by_one | {f"r:{name}": r for name, r in read["live"]["rules"].items()}


def test_a_batch_redelivered_across_the_upgrade_counts_once(storage_connection: str, table_prefix: str) -> None:
    """An old instance counted a batch into its minute row and stopped before the checkpoint; this release gets
    the same batch again and adds its counts to the sharded rows: it must recognise it."""
    old = next(r for r in BEFORE["rows"] if r["PartitionKey"] == "w" and json.loads(r["batches"]))
    minute, batch = int(old["RowKey"]), json.loads(old["batches"])[-1]
    store = restore(storage_connection, table_prefix, rows_of(BEFORE))
    rule, groups = next(iter(json.loads(old["d0"]).items()))
    key = next(iter(groups))
    before = store.merge_buckets({}, minute, minute)[minute][rule][key].unbound
    tally = Tally()
    tally.counts(minute, rule, key).add_unbound({"app": ["Microsoft Teams"]}, "again")
    assert store.merge_buckets(tally.buckets, minute, minute, batch)[minute][rule][key].unbound == before
    assert store.merge_buckets(tally.buckets, minute, minute, "a-new-batch")[minute][rule][key].unbound == before + 1


def test_the_detector_carries_on_from_rows_before_the_rewrite(
    storage_connection: str, table_prefix: str, tmp_path: Path
) -> None:
    """Episodes move into shards; firing alerts keep their episode and resolve on schedule. They belong to no
    incident, so what is decided about them is logged and told to nobody (docs/deploy.md, Upgrading)."""
    store = restore(storage_connection, table_prefix, rows_of(BEFORE))
    told: list[Notification] = []
    detector = Detector(rules_of(BEFORE, tmp_path), store, ["teams"], handoff=told.extend)
    firing = {fp: a["starts_at"] for fp, a in BEFORE["answers"]["live"]["alerts"].items() if a["status"] == "firing"}
    assert firing
    clock = (minutes(BEFORE["rows"])[1] + 1) * 60.0
    decided: list[dict[str, Any]] = []
    for step in range(1, 7):  # ten-minute ticks without traffic: an hour, past every window and quiet period
        decided += detector.observe(Batch([], [], [], clock + 600 * step, previous_clock=clock + 600 * (step - 1)))
    resolved = sorted(line["fingerprint"] for line in decided if line["status"] == "resolved")
    assert resolved == sorted(firing)  # each once
    for line in decided:  # never a new episode: each decision is of the episode the old release started
        assert line["fingerprint"] in firing and line["starts_at"] == iso(firing[line["fingerprint"]])
        assert line["incident"] == ""
    assert not told
    assert not store.load_states().alerts
    # Episodes the rule rows kept are in shards now, marked; the rule rows no longer hold them.
    for name, old in BEFORE["answers"]["live"]["rules"].items():
        if not old["seen"]:
            continue
        rule = store.table.get_entity("s", "r:" + name)
        assert rule[SCHEMA] == DETECTION.version and "seen" not in json.loads(rule["d0"])
        shards = store.table.query_entities("PartitionKey eq 's' and RowKey ge @lo and RowKey lt @hi",
                                            parameters={"lo": f"m:{name}:", "hi": f"m:{name};"})  # fmt: skip
        entries = {k: v for row in shards for k, v in json.loads(row["d0"])["entries"].items()}
        assert entries == old["seen"]


# --- refusing a newer schema ---


def test_a_newer_window_row_is_not_counted_and_never_overwritten(
    storage_connection: str, table_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    newer = next(r for r in TODAY["rows"] if r["PartitionKey"] == "w")
    minute = int(newer["RowKey"][:10])
    store = restore(storage_connection, table_prefix, rows_of(TODAY, {newer["RowKey"]: {SCHEMA: NEWER}}))
    before = etag(store, "w", newer["RowKey"])
    rule, groups = next(iter(json.loads(newer["d0"]).items()))
    key = next(iter(groups))
    assert f"{minute:010d}:{bucket_shard(rule, key):02d}" == newer["RowKey"]
    caplog.set_level(logging.WARNING, logger="bindwatch")
    tally = Tally()
    tally.counts(minute, rule, key).add_unbound({"app": ["Microsoft Teams"]}, "lands-in-the-newer-row")
    other = next(f"group {n}" for n in range(100) if bucket_shard(rule, f"group {n}") != bucket_shard(rule, key))
    tally.counts(minute, rule, other).judged += 1  # another shard of that minute: written as usual
    merged = store.merge_buckets(tally.buckets, minute, minute, "b1")
    assert key not in merged.get(minute, {}).get(rule, {})  # absent, for this release: not misread
    assert etag(store, "w", newer["RowKey"]) == before  # and left as the newer release wrote it
    assert store.degraded.counts["bucket_refused"] == 1
    assert merged[minute][rule][other].judged == 1
    line = refusals(caplog)[0]
    assert line["table"] == table_prefix + "detect" and line["schemas"] == [str(NEWER)] and line["rows"] == 1
    assert line["first"] == f"w {newer['RowKey']}" and line["left"] == LEFT["window"]
    # Pruning leaves it to the release that wrote it, and drops every other row of those minutes.
    last = minutes(TODAY["rows"])[1]
    caplog.clear()
    store.prune(last + 1)
    assert [r["RowKey"] for r in store.table.query_entities("PartitionKey eq 'w'")] == [newer["RowKey"]]
    assert [line["left"] for line in refusals(caplog)] == [LEFT["prune"]]


def test_newer_memory_alert_and_incident_rows_are_left_alone(
    storage_connection: str, table_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    alert, incident, shard = keys(TODAY, "a:")[0], keys(TODAY, "i:")[0], keys(TODAY, "m:")[0]
    rule = shard[2:].rsplit(":", 1)[0]
    newer = {key: {SCHEMA: NEWER} for key in (alert, incident, shard)}
    store = restore(storage_connection, table_prefix, rows_of(TODAY, newer))
    etags = {key: etag(store, "s", key) for key in [alert, incident, *keys(TODAY, f"m:{rule}:"), f"r:{rule}"]}
    caplog.set_level(logging.WARNING, logger="bindwatch")
    live = store.load_states()
    assert alert[2:] not in live.alerts and incident[2:] not in live.incidents
    assert len(live.alerts) == len(TODAY["answers"]["live"]["alerts"]) - 1 and live.alerts
    # Half a rule's memory would be misread as the whole: none of it is loaded, so the rule warms up afresh.
    assert rule not in live.rules and not any(name == rule for name, _ in live.memory)
    assert set(live.rules) == set(TODAY["answers"]["live"]["rules"]) - {rule}
    lines = {line["left"]: line for line in refusals(caplog)}
    assert set(lines) == {LEFT["alert"], LEFT["incident"], LEFT["memory"]}
    assert lines[LEFT["memory"]]["first"] == f"s {shard}" and lines[LEFT["alert"]]["first"] == f"s {alert}"
    # Nothing of them is written: not the rule, not its shards, not the alert, not the incident.
    free = next(n for n in range(16) if f"m:{rule}:{n:02d}" not in etags)
    assert store.save_memory([GroupMemory(rule, free)], [RuleState(rule, started=1.0)]) == []  # left, not lost
    assert not store.save_rule(RuleState(rule, started=1.0))
    assert not store.save_alert(AlertState(alert[2:], "r", {}, status="firing"))
    caplog.clear()
    with pytest.raises(Refused):
        store.load_alert(alert[2:])
    assert [line["left"] for line in refusals(caplog)] == [LEFT["alert"]]
    assert store.load_incident(incident[2:]) is None
    assert not store.save_incident(IncidentState(incident[2:], 1.0))
    assert {key: etag(store, "s", key) for key in etags} == etags
    assert not list(store.table.query_entities("RowKey eq @k", parameters={"k": f"m:{rule}:{free:02d}"}))


def test_a_row_that_turns_newer_after_loading_is_found_at_the_write_and_left(
    storage_connection: str, table_prefix: str
) -> None:
    """A newer instance rewrites a rule's row between this one's load and its write: the conditional write loses,
    the reload refuses it, and the rule is left to the newer release instead of retried until the batch fails."""
    name = keys(TODAY, "r:")[0][2:]
    store = restore(storage_connection, table_prefix, rows_of(TODAY))
    rule = store.load_states().rules[name]
    row = store.table.get_entity("s", "r:" + name)
    store.table.update_entity({**row, SCHEMA: NEWER})
    after = etag(store, "s", "r:" + name)
    rule.started = 0.0
    assert store.save_memory([], [rule]) == [rule]  # lost the race, as to any other writer
    assert store.load_rule(name) is None  # the reload refuses it
    assert store.save_memory([], [rule]) == []  # from then on left to the newer release
    assert etag(store, "s", "r:" + name) == after


def test_the_detector_does_not_decide_an_alert_a_newer_release_keeps(
    storage_connection: str, table_prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its condition still holds here: deciding it afresh would page twice. It is left to the newer release: not
    decided, no line, the batch goes on, and the newer row is as it was."""
    firing = [fp for fp, a in TODAY["answers"]["live"]["alerts"].items() if a["status"] == "firing"]
    store = restore(storage_connection, table_prefix, rows_of(TODAY, {f"a:{fp}": {SCHEMA: NEWER} for fp in firing}))
    before = {fp: etag(store, "s", "a:" + fp) for fp in firing}
    detector = Detector(rules_of(TODAY, tmp_path), store, ["teams"], handoff=lambda notifications: None)
    clock = (minutes(TODAY["rows"])[1] + 1) * 60.0
    caplog.set_level(logging.WARNING, logger="bindwatch")
    lines = detector.observe(Batch([], [], [], clock, previous_clock=clock - 60))
    assert not [line for line in lines if line.get("fingerprint") in firing]
    assert {line["left"] for line in refusals(caplog)} >= {LEFT["alert"]}
    assert {fp: etag(store, "s", "a:" + fp) for fp in firing} == before
