"""Capture the stored formats as the code writes them now, as JSON fixtures for the upgrade tests.

Run from the repository root, BEFORE a change to a stored format, so the old format stays in the tests for good:

    .venv/bin/python -m tests.support.capture_rows tests/storage/fixtures/schema1 [COMMIT]

It starts Azurite, drives synthetic sign-ins through the real pipeline on the Table store (some settled, some
open, one reopened by a late request, report rows not yet acknowledged), writes outbox entries in each state and
a circuit breaker through `TableOutbox`, and dead letters through `BlobDeadLetter`. Then it saves every row
exactly as the Table service returns it (OData JSON, type annotations kept, server-made `odata.etag` and
`Timestamp` left out) and the dead-letter blob's lines as they are, and in `answers.json` what that same code
reads from them (every sign-in, its details, the clock, the outbox, the breaker, what a settle and retention then
do, and the rejections the dead letters keep). `tests/storage/test_schema.py` writes the rows back into a fresh
Azurite and holds the current code's reading to those answers.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from shared.core.alert import Notification
from shared.core.message import Message, Origin
from shared.core.rejection import Rejection
from shared.core.verdict import verdict_line
from shared.ingest.deadletter import as_rejections
from shared.ingest.pipeline import Pipeline, judge_all
from shared.notify.breaker import BreakerState
from shared.notify.outbox import Entry
from shared.storage.deadletter_blob import BlobDeadLetter
from shared.storage.outbox_table import TableOutbox
from shared.storage.signin_table import TableStore
from shared.synth.alerts import sample
from shared.synth.records import BASE_TIME, body, record
from shared.synth.traffic import Traffic
from tests.support import azurite

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "capture"
SERVER_MADE = ("odata.etag", "Timestamp", "Timestamp@odata.type")


class RawBodies(RequestsTransport):
    """Keeps the body of every GET answer: the rows exactly as the service sent them."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[str] = []

    def send(self, request: Any, **kwargs: Any) -> Any:
        response = super().send(request, **kwargs)
        if request.method == "GET":
            self.bodies.append(response.text())
        return response


def raw_rows(connection: str, table: str) -> list[dict[str, Any]]:
    """Every row of `table` as the service's JSON (all pages), without what the service makes itself."""
    transport = RawBodies()
    client = TableServiceClient.from_connection_string(connection, transport=transport).get_table_client(table)
    list(client.list_entities())
    rows = [row for text in transport.bodies for row in json.loads(text)["value"]]
    return [{k: v for k, v in row.items() if k not in SERVER_MADE} for row in rows]


def messages(traffic: Traffic, minutes: float, count: int, start: int) -> list[Message]:
    """`count` sign-ins starting `minutes` after BASE_TIME, 40 records a message, with Event Hub coordinates."""
    records = [
        item for i in range(count) for item in traffic.signin(BASE_TIME + timedelta(minutes=minutes, seconds=3 * i))
    ]
    return [
        Message(body(records[i : i + 40]), Origin(source="eventhub", partition="0", sequence_number=start + i))
        for i in range(0, len(records), 40)
    ]


def write_signins(connection: str) -> None:
    """Sign-ins settled (f| and r| rows), open (d| rows), one reopened by a late request, and the clock."""
    store = TableStore(TableServiceClient.from_connection_string(connection), prefix=PREFIX).ensure()
    pipeline = Pipeline(store, settle_seconds=600.0)
    traffic = Traffic(seed=18, fillers=30)
    early = messages(traffic, 0, 24, 0)
    pipeline.ingest(early)
    late = messages(traffic, 20, 12, 1000)
    pipeline.ingest(late)  # the clock moves 20 minutes: the early sign-ins settle, their report rows wait for acks
    reopened = json.loads(early[0].body)["records"][0]["properties"]["correlationId"]
    again = record(correlation_id=reopened, at=BASE_TIME + timedelta(minutes=21), status="unbound", code=1008)
    pipeline.ingest([Message(body([again]), Origin(source="eventhub", partition="1", sequence_number=5000))])


def write_outbox(connection: str) -> None:
    """A pending, a delivered (with its parts done) and a failed notification, and a breaker that opened."""
    outbox = TableOutbox(TableServiceClient.from_connection_string(connection), PREFIX)
    at = BASE_TIME.timestamp()
    for receiver, kind, state in (("teams", "spike", "pending"), ("pagerduty", "ratio", "delivered"),
                                  ("webhook", "new", "failed")):  # fmt: skip
        notification = Notification(receiver, [sample(kind, at=at), sample(kind, "resolved", at=at)], at + 30)
        entry = Entry(receiver, notification, created=at + 31, next_at=at + 31, updated=at + 31)
        outbox.add(entry)
        if state == "delivered":
            entry.state, entry.attempts, entry.http_status, entry.answer = "delivered", 2, 202, '{"status":"success"}'
            entry.done = [a.fingerprint for a in notification.alerts]
        elif state == "failed":
            entry.state, entry.attempts, entry.http_status, entry.answer = "failed", 1, 400, "400 Bad Request"
        entry.updated = at + 95
        outbox.save(entry)
    outbox.save_breaker("webhook", BreakerState(failures=5, open_until=at + 150, opened=1))


def rejection_answer(rejection: Rejection) -> dict[str, Any]:
    origin = rejection.origin
    return {
        "reason": rejection.reason,
        "origin": [origin.source, origin.partition, origin.offset, origin.sequence_number, origin.enqueued_time],
        "raw_base64": base64.b64encode(rejection.raw).decode(),
        "index": rejection.index,
    }


def entry_answer(entry: Entry) -> dict[str, Any]:
    fields = ("destination", "created", "next_at", "state", "attempts", "done", "lease_until", "http_status")
    return {**{name: getattr(entry, name) for name in fields}, "answer": entry.answer, "updated": entry.updated,
            "notification": entry.notification.to_dict()}  # fmt: skip


def read_answers(connection: str) -> dict[str, Any]:
    """What the code reads from the rows as they stand, then what a settle and retention do with them."""
    service = TableServiceClient.from_connection_string(connection)
    store = TableStore(service, prefix=PREFIX).ensure()
    signins = sorted((verdict_line(s) for s in store.signins()), key=lambda line: line["correlation_id"])
    details = {line["correlation_id"]: store.details(line["correlation_id"]) for line in signins}
    clock = store.load_clock()
    outbox = TableOutbox(service, PREFIX)
    entries = sorted((entry_answer(e) for e in outbox.entries()), key=lambda e: e["destination"])
    due = sorted(e.id for e in outbox.due(BASE_TIME.timestamp() + 86400))
    breaker = outbox.load_breaker("webhook")
    settled = TableStore(service, prefix=PREFIX).ensure().settle(float("inf"), orphan_age=0.0)
    expired = TableStore(service, prefix=PREFIX).ensure().expire(float("inf"))
    return {
        "signins": signins,
        "details": details,
        "clock": None if clock is None else [clock.watermark, clock.wall],
        "outbox": entries,
        "due": due,
        "breaker": [breaker.failures, breaker.open_until, breaker.opened],
        "settled": sorted((verdict_line(s) for s in settled), key=lambda line: line["correlation_id"]),
        "expired": expired,
    }


def write_dead_letters(connection: str) -> tuple[list[str], list[Rejection]]:
    """What samples/04-broken.jsonl gets rejected for, and a batch given up after its last retry."""
    lines = (ROOT / "samples" / "04-broken.jsonl").read_bytes().splitlines()
    broken = [
        Message(line, Origin("eventhub", "2", str(100 * i), 70 + i, 1_773_130_000.0)) for i, line in enumerate(lines)
    ]
    _, rejections, _ = judge_all(broken, 1_773_130_000.0, 1_773_130_000.0 + 300)
    rejections += as_rejections(broken[:1], "not processed after the last retry: StoreConflict")
    container = BlobServiceClient.from_connection_string(connection).get_container_client("capture-rejected")
    name = BlobDeadLetter(container).write(rejections)
    assert name is not None
    return container.download_blob(name).readall().decode("utf-8").splitlines(), rejections


def commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"


def main(out: Path, label: str | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    server = azurite.start()
    try:
        connection = server.connection_string
        write_signins(connection)
        write_outbox(connection)
        dead, rejections = write_dead_letters(connection)
        made = {"commit": label or commit(), "by": "python -m tests.support.capture_rows"}
        for table in ("signins", "outbox", "circuit"):
            rows = raw_rows(connection, PREFIX + table)
            (out / f"{table}.json").write_text(json.dumps({**made, "rows": rows}, indent=1, ensure_ascii=False) + "\n")
        (out / "deadletters.jsonl").write_text("\n".join(dead) + "\n")
        answers = {**made, **read_answers(connection), "dead_letters": [rejection_answer(r) for r in rejections]}
        (out / "answers.json").write_text(json.dumps(answers, indent=1, ensure_ascii=False) + "\n")
    finally:
        server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)  # the commit, when run outside a clone
