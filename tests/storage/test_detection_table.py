"""The detection state in Table Storage (a real Azurite): conditional merges, restarts, two instances, cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from azure.data.tables import TableServiceClient

from shared.core.alert import Notification, fingerprint
from shared.detect.detector import Detector
from shared.detect.incident import IncidentState
from shared.detect.lifecycle import AlertState
from shared.detect.memory import GroupMemory, RuleState
from shared.detect.rules import load_rules
from shared.detect.window import Buckets, Tally
from shared.ingest.files import messages_from
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.storage.detection_table import BUCKET_SHARDS, ROW_CHARS, TableDetectionStore

ROOT = Path(__file__).resolve().parents[2]
SETTLE = 600.0


def store(connection: str, prefix: str) -> TableDetectionStore:
    return TableDetectionStore(TableServiceClient.from_connection_string(connection), prefix)


def increments(minute: int, unbound: int, judged: int = 0) -> Buckets:
    tally = Tally()
    counts = tally.counts(minute, "r", '["Teams"]')
    counts.judged += judged
    for index in range(unbound):
        counts.add_unbound({"app": ["Teams"]}, f"c{minute}-{index}")
    return tally.buckets


def test_bucket_merges_add_up_across_instances(storage_connection: str, table_prefix: str) -> None:
    a, b = store(storage_connection, table_prefix), store(storage_connection, table_prefix)
    a.merge_buckets(increments(100, 2, 5), 90, 110)
    merged = b.merge_buckets(increments(100, 3), 90, 110)
    counts = merged[100]["r"]['["Teams"]']
    assert (counts.judged, counts.unbound) == (5, 5)
    assert counts.top("app") == [("Teams", 5)]


def test_a_conflicting_writer_makes_the_merge_reread_and_retry(storage_connection: str, table_prefix: str) -> None:
    a, b = store(storage_connection, table_prefix), store(storage_connection, table_prefix)
    a.merge_buckets(increments(200, 1), 200, 200)
    original = b._read_buckets
    raced = []

    def read_then_race(low: int, high: int) -> Any:
        found = original(low, high)
        if not raced:
            raced.append(True)
            a.merge_buckets(increments(200, 10), 200, 200)  # lands between b's read and b's write
        return found

    b._read_buckets = read_then_race  # type: ignore[method-assign]
    merged = b.merge_buckets(increments(200, 100), 200, 200)
    assert merged[200]["r"]['["Teams"]'].unbound == 111
    assert a.merge_buckets({}, 200, 200)[200]["r"]['["Teams"]'].unbound == 111


def test_alert_and_rule_writes_are_conditional(storage_connection: str, table_prefix: str) -> None:
    a, b = store(storage_connection, table_prefix), store(storage_connection, table_prefix)
    key = fingerprint("r", {"app": "Teams"})
    first = AlertState(key, "r", {"app": "Teams"}, status="firing")
    assert a.save_alert(first)
    assert not b.save_alert(AlertState(key, "r", {"app": "Teams"}, status="firing"))  # b did not know it existed
    loaded = b.load_alert(key)
    assert loaded is not None and loaded.status == "firing"
    assert a.save_alert(first)  # a's etag is current
    assert not b.save_alert(loaded)  # b's is not any more
    rule = RuleState("r", started=1.0)
    assert a.save_rule(rule) and not b.save_rule(RuleState("r", started=2.0))
    loaded = b.load_states()
    assert loaded.rules["r"].started == 1.0 and key in loaded.alerts
    first.status = "resolved"
    assert a.save_alert(first)
    assert key not in b.load_states().alerts  # resolved: no longer loaded every batch


def test_memory_shards_and_incidents_are_written_conditionally(storage_connection: str, table_prefix: str) -> None:
    a, b = store(storage_connection, table_prefix), store(storage_connection, table_prefix)
    shard = GroupMemory("r", 3, {'["Teams"]': [1.0, 2.0, 3.0]})
    other = GroupMemory("r", 4, {'["Outlook"]': [1.0, 2.0, 3.0]})
    assert a.save_memory([shard, other]) == []  # one transaction
    assert [s.shard for s in b.save_memory([GroupMemory("r", 3), GroupMemory("r", 5)])] == [3]  # 3 exists
    loaded = b.load_states()
    assert loaded.memory["r", 3].entries == shard.entries and ("r", 5) in loaded.memory
    shard.entries['["Word"]'] = [0.0, 1.0, 3.0]
    assert a.save_memory([shard]) == []
    assert b.load_memory("r", 3).entries == shard.entries  # type: ignore[union-attr]
    incident = IncidentState("inc-1", 1.0)
    assert a.save_incident(incident) and not b.save_incident(IncidentState("inc-1", 2.0))
    assert "inc-1" in b.load_states().incidents
    incident.status = "resolved"  # and nobody was told: no longer live
    assert a.save_incident(incident)
    assert "inc-1" not in b.load_states().incidents and b.load_incident("inc-1") is not None


def many(groups: int, name: str = "App") -> Buckets:
    tally = Tally()
    for index in range(groups):
        counts = tally.counts(500, "r", f'["{name} {index:05d}"]')
        counts.judged += 3
        counts.add_unbound({"app": [f"{name} {index}"], "user": [f"u{index}"], "os": ["Windows10"]}, f"c{index}")
    return tally.buckets


def row_text(row: dict[str, Any]) -> int:
    return sum(len(v) for k, v in row.items() if k[0] == "d" and k[1:].isdigit())


def test_a_minute_of_many_groups_spreads_over_rows_each_within_its_bounds(
    storage_connection: str, table_prefix: str
) -> None:
    """Issue 13: a minute's counts lived in one row; 2,000 groups with detail made it too large for an entity."""
    s = store(storage_connection, table_prefix)
    merged = s.merge_buckets(many(12_000), 500, 500)
    assert len(merged[500]["r"]) == 12_000 and sum(c.unbound for c in merged[500]["r"].values()) == 12_000
    rows = list(s.table.query_entities("PartitionKey eq 'w'"))
    assert len(rows) == BUCKET_SHARDS and max(row_text(r) for r in rows) <= ROW_CHARS
    assert not s.degraded.counts  # 12,000 groups with their detail fit as they are


def test_a_minute_past_the_bounds_sheds_detail_then_groups_and_says_so(
    storage_connection: str, table_prefix: str
) -> None:
    s = store(storage_connection, table_prefix)
    merged = s.merge_buckets(many(60_000, "A much longer application name, as some are"), 500, 500)
    rows = list(s.table.query_entities("PartitionKey eq 'w'"))
    assert max(row_text(r) for r in rows) <= ROW_CHARS  # no batch fails: each row stays what an entity holds
    assert s.degraded.counts["bucket_detail"] >= 1 and s.degraded.counts["bucket_groups"] > 0
    assert len(merged[500]["r"]) == 60_000  # this batch judges what it counted
    kept = s.merge_buckets({}, 500, 500)[500]["r"]  # what the next batch, or another instance, reads
    assert len(kept) + s.degraded.counts["bucket_groups"] == 60_000  # what was dropped is counted
    assert all(not c.details for c in kept.values())  # detail went first


def test_prune_drops_old_buckets_only(storage_connection: str, table_prefix: str) -> None:
    s = store(storage_connection, table_prefix)
    for minute in (10, 20, 30):
        s.merge_buckets(increments(minute, 1), minute, minute)
    assert s.prune(25) == 2
    assert sorted(s.merge_buckets({}, 0, 100)) == [30]


def run(pipelines: list[Pipeline], batch: int = 10) -> list[dict[str, Any]]:
    messages = list(messages_from([str(ROOT / "samples" / "02-burst.jsonl")]))
    lines: list[dict[str, Any]] = []
    for index, start in enumerate(range(0, len(messages), batch)):
        lines += pipelines[index % len(pipelines)].ingest(messages[start : start + batch]).lines
    lines += pipelines[0].drain().lines
    return [line for line in lines if line["type"] == "alert"]


def decisions(lines: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(a["rule"], a["fingerprint"], a["status"], a["at"]) for a in lines]


def test_restart_and_two_instances_over_table_storage_match_one_process(
    storage_connection: str, table_prefix: str
) -> None:
    from shared.detect.state import MemoryDetectionStore

    rules = load_rules()
    alone = run([Pipeline(MemoryStore(), SETTLE, observers=[Detector(rules, MemoryDetectionStore())])], batch=3)
    assert alone
    signins = MemoryStore()
    stores = [store(storage_connection, table_prefix) for _ in range(2)]
    pipelines = [Pipeline(signins, SETTLE, observers=[Detector(rules, s)]) for s in stores]
    shared = run(pipelines, batch=3)  # alternate batches: each instance is also "restarted" every other batch
    assert decisions(shared) == decisions(alone)


def test_storage_requests_per_batch_stay_small(storage_connection: str, table_prefix: str) -> None:
    """Steady state: 1 query for states, 1 query + 1 transaction for the buckets; writes only on decisions, and once
    per finished 5-minute window one transaction for what the rules learnt (their rows and memory shards)."""
    s = store(storage_connection, table_prefix)
    handed: list[Notification] = []
    pipeline = Pipeline(MemoryStore(), SETTLE, observers=[Detector(load_rules(), s, ["teams"], handoff=handed.extend)])
    messages = list(messages_from([str(ROOT / "samples" / "02-burst.jsonl")]))
    costs = []
    clock = None
    for start in range(0, len(messages), 3):
        before, handed_before = s.requests, len(handed)
        outcome = pipeline.ingest(messages[start : start + 3])
        quiet = not outcome.lines or all(line["type"] == "verdict" for line in outcome.lines)
        windows = 0 if clock is None or outcome.clock is None else int(outcome.clock // 300) - int(clock // 300)
        costs.append((s.requests - before, quiet and len(handed) == handed_before, windows))
        clock = outcome.clock
    assert sum(cost for cost, _, _ in costs) / len(costs) <= 7  # was 6 before learning: batches here span ~5 min
    assert min(cost for cost, quiet, windows in costs if quiet and not windows) == 3
    before = s.requests
    pipeline.ingest(messages[-3:])  # redelivered: nothing new to count
    assert s.requests - before == 2
