"""Capture the detection table's rows as the code writes them now, with what that code reads back, as a fixture.

Run from the repository root, BEFORE a change to the detection table's format, so the old format stays in the
tests for good:

    .venv/bin/python -m tests.support.capture_detection tests/storage/fixtures/detect2.json [LABEL]

It starts Azurite and runs the first `MESSAGES` messages of samples/02-burst.jsonl, with Event Hub coordinates,
through the release's own pipeline and rules.toml into `TableDetectionStore`, 3 messages a batch. The table is
then as a running service leaves it while alerts fire: window rows, rule memory, firing alerts and, where the
release has them, incidents. It saves every row exactly as the Table service returns it (OData JSON; the
server-made `odata.etag` and `Timestamp` left out), the rules.toml used, and in `answers` what that same code
reads from the rows.

The module only uses what the code before the detection rewrite has too. So `detect1.json` was made by running
it on an export of commit 10963f5 (`git archive 10963f5 | tar -x -C DIR`, this file copied into
DIR/tests/support/, node_modules linked, then the command above from DIR with LABEL 10963f5).
`tests/storage/test_detection_schema.py` writes the rows back into a fresh Azurite and holds the current code's
reading to those answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from azure.data.tables import TableServiceClient, UpdateMode

from shared.core.message import Message, Origin
from shared.detect.detector import Detector
from shared.detect.rules import DEFAULT_RULES_FILE, load_rules
from shared.ingest.files import messages_from
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.storage.detection_table import TableDetectionStore
from tests.support import azurite
from tests.support.capture_rows import raw_rows

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "capture"
SETTLE = 600.0
BATCH = 3  # messages per batch: the alerts of the burst fire across several batches
MESSAGES = 24  # of the burst's 39: every alert it makes is firing still, in an open incident (since the rewrite)


def write_rows(connection: str, prefix: str = PREFIX, rules: Path | None = None) -> None:
    """The burst through the pipeline into the detection table, as a running service leaves it (not drained);
    with the release's rules.toml unless told."""
    store = TableDetectionStore(TableServiceClient.from_connection_string(connection), prefix)
    detector = Detector(load_rules(rules), store, ["teams"], handoff=lambda notifications: None)
    pipeline = Pipeline(MemoryStore(), SETTLE, observers=[detector])
    messages = burst()[:MESSAGES]
    for start in range(0, len(messages), BATCH):
        pipeline.ingest(messages[start : start + BATCH])


def burst() -> list[Message]:
    """samples/02-burst.jsonl as Event Hub delivers it: with coordinates, so each batch has a key (window rows
    remember the batches they took in)."""
    found = messages_from([str(ROOT / "samples" / "02-burst.jsonl")])
    return [Message(m.body, Origin(source="eventhub", partition="0", sequence_number=i)) for i, m in enumerate(found)]


def restore(connection: str, prefix: str, rows: list[dict[str, Any]]) -> TableDetectionStore:
    """Fixture rows into a fresh `<prefix>detect`, each property in the type it was stored in, and a store on it."""
    store = TableDetectionStore(TableServiceClient.from_connection_string(connection), prefix)
    for raw in rows:
        store.table.upsert_entity(entity_of(raw), mode=UpdateMode.REPLACE)
    return store


def entity_of(raw: dict[str, Any]) -> dict[str, Any]:
    """A row of the service's JSON as the SDK writes it back. The detection table stores strings, Int32 and
    Booleans only, which JSON keeps as they are; any other type is a fixture this loader does not know."""
    types = {raw[name] for name in raw if name.endswith("@odata.type")}
    if types:
        raise AssertionError(f"a fixture type this loader does not know: {sorted(types)}")
    return {name: value for name, value in raw.items() if not name.startswith("odata.")}


def minutes(rows: list[dict[str, Any]]) -> tuple[int, int]:
    """The first and last minute of the window rows."""
    found = [int(row["RowKey"][:10]) for row in rows if row["PartitionKey"] == "w"]
    return min(found), max(found)


def read_answers(store: TableDetectionStore, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the code reads from the rows: the windows, what is live, and each "s" row on its own."""
    first, last = minutes(rows)
    buckets = store.merge_buckets({}, first, last)
    answers: dict[str, Any] = {
        "buckets": {
            str(minute): {rule: {key: c.to_data() for key, c in groups.items()} for rule, groups in bucket.items()}
            for minute, bucket in sorted(buckets.items())
        }
    }
    states = store.load_states()
    if isinstance(states, tuple):  # before the rewrite: (rules, alerts)
        rules, alerts, memory, incidents = *states, {}, {}
    else:
        rules, alerts, memory, incidents = states.rules, states.alerts, states.memory, states.incidents
    answers["live"] = {
        "rules": {name: state.to_data() for name, state in sorted(rules.items())},
        "memory": {f"{rule}:{shard}": m.to_data() for (rule, shard), m in sorted(memory.items())},
        "alerts": {key: state.to_data() for key, state in sorted(alerts.items())},
        "incidents": {key: state.to_data() for key, state in sorted(incidents.items())},
    }
    answers["rows"] = {row["RowKey"]: one_row(store, row["RowKey"]) for row in rows if row["PartitionKey"] == "s"}
    return answers


def one_row(store: TableDetectionStore, key: str) -> dict[str, Any] | None:
    """One "s" row read through the store's own loader for its kind."""
    kind, rest = key[:2], key[2:]
    if kind == "r:":
        found: Any = store.load_rule(rest)
    elif kind == "m:":
        rule, shard = rest.rsplit(":", 1)
        found = store.load_memory(rule, int(shard))
    elif kind == "i:":
        found = store.load_incident(rest)
    else:
        found = store.load_alert(rest)
    return None if found is None else found.to_data()


def commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"


def main(out: Path, label: str | None = None) -> None:
    server = azurite.start()
    try:
        connection = server.connection_string
        write_rows(connection)
        rows = raw_rows(connection, PREFIX + "detect")
        store = TableDetectionStore(TableServiceClient.from_connection_string(connection), PREFIX)
        made = {"commit": label or commit(), "by": "python -m tests.support.capture_detection"}
        rules = DEFAULT_RULES_FILE.read_text(encoding="utf-8")  # what made the rows, for tests that carry on
        fixture = {**made, "rules": rules, "rows": rows, "answers": read_answers(store, rows)}
        out.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
    finally:
        server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)  # the commit, when run outside a clone
