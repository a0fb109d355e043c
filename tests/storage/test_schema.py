"""Upgrades keep state: rows and lines stored by commit 1aa6fb3 (before versions were marked) are read by this code
as that code read them, and a row marked with a newer schema is refused with one log line, never misread.

The fixtures in `fixtures/schema1/` were made by `python -m tests.support.capture_rows` run on an export of commit
1aa6fb3 against Azurite: the rows exactly as the Table service returned them, the dead-letter blob's lines, and in
`answers.json` what that code read from them. Each test writes the rows back into fresh Azurite tables.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import EdmType, EntityProperty, TableServiceClient, UpdateMode
from hypothesis import given
from hypothesis import strategies as st

from shared.core.alert import highest_severity
from shared.core.clock import ClockState
from shared.core.message import Message
from shared.core.record import read_message
from shared.core.rejection import Rejection
from shared.core.request import Request, judge
from shared.core.schema import SCHEMA, UNMARKED, Refused, Schema
from shared.core.verdict import verdict_line
from shared.ingest.deadletter import DEAD_LETTERS, read_dead_letter_line
from shared.notify.breaker import BreakerState
from shared.storage.entity import open_table
from shared.storage.outbox_table import CIRCUIT, OUTBOX, TableOutbox
from shared.storage.signin_rows import SIGNINS, signin_row
from shared.storage.signin_table import TableStore
from shared.synth.records import BASE_TIME, body, record
from shared.views.lookup import StoreDetails, lookup_response
from tests.support.capture_rows import entry_answer, rejection_answer

FIXTURES = Path(__file__).parent / "fixtures" / "schema1"
NEWER = SIGNINS.version + 1
T0 = BASE_TIME.timestamp()


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


ANSWERS = fixture("answers.json")


def entity_of(raw: dict[str, Any]) -> dict[str, Any]:
    """A row of the service's JSON as the SDK writes it back, each property in the type it was stored in."""
    entity: dict[str, Any] = {}
    for name, stored in raw.items():
        if name.endswith("@odata.type") or name.startswith("odata."):
            continue
        kind = raw.get(f"{name}@odata.type")
        if kind == "Edm.Binary":
            entity[name] = base64.b64decode(stored)
        elif kind == "Edm.Int64":
            entity[name] = EntityProperty(int(stored), EdmType.INT64)
        elif kind is None:
            entity[name] = stored  # JSON keeps 1.0 apart from 1: a Double stays a Double, an Int32 an Int32
        else:
            raise AssertionError(f"a fixture type this loader does not know: {kind}")
    return entity


def load(service: TableServiceClient, prefix: str, table: str, change: dict[str, dict[str, Any]] | None = None) -> None:
    """The fixture rows of `table` into `<prefix><table>`; `change` sets properties of some rows (by RowKey)."""
    client = open_table(service, prefix + table)
    for raw in fixture(f"{table}.json")["rows"]:
        entity = entity_of(raw)
        entity.update((change or {}).get(raw["RowKey"], {}))
        client.upsert_entity(entity, mode=UpdateMode.REPLACE)


@pytest.fixture
def service(storage_connection: str) -> TableServiceClient:
    return TableServiceClient.from_connection_string(storage_connection)


def requests_of(*records: dict[str, Any]) -> list[Request]:
    return [judge(accepted, T0) for accepted in read_message(Message(body(list(records)))).accepted]


def lines(signins: Any) -> list[dict[str, Any]]:
    return sorted((verdict_line(s) for s in signins), key=lambda line: line["correlation_id"])


def refusals(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    found = [json.loads(r.getMessage().removeprefix("BINDWATCH ")) for r in caplog.records]
    return [line for line in found if line["event"] == "schema_refused"]


def open_signin() -> str:
    """A sign-in the fixture holds open (it has a due row), other than the one a late request reopened."""
    rows = fixture("signins.json")["rows"]
    finals = {r["RowKey"].rsplit("|", 1)[1] for r in rows if r["RowKey"].startswith("f|")}
    due = sorted(r["RowKey"].rsplit("|", 1)[1] for r in rows if r["RowKey"].startswith("d|"))
    return next(cid for cid in due if cid not in finals)


def due_key(correlation_id: str) -> str:
    (key,) = [r["RowKey"] for r in fixture("signins.json")["rows"] if r["RowKey"].endswith("|" + correlation_id)
              and r["RowKey"].startswith("d|")]  # fmt: skip
    return key


# --- the fixtures are today's format ---


def test_the_fixtures_are_the_unmarked_format_of_commit_1aa6fb3() -> None:
    for table in ("signins", "outbox", "circuit"):
        made = fixture(f"{table}.json")
        assert made["commit"] == "1aa6fb3" and made["rows"]
        assert not any(SCHEMA in row for row in made["rows"])
    kinds = {row["RowKey"][:2] for row in fixture("signins.json")["rows"]}
    assert kinds == {"s|", "d|", "f|", "r|", "cl"}  # every row kind of the sign-in table, the clock included
    assert {row["state"] for row in fixture("outbox.json")["rows"]} == {"pending", "delivered", "failed"}
    assert not any(SCHEMA in json.loads(line) for line in (FIXTURES / "deadletters.jsonl").read_text().splitlines())


# --- reading schema 1 ---


def test_sign_in_rows_of_schema_1_read_as_that_release_read_them(
    service: TableServiceClient, table_prefix: str
) -> None:
    load(service, table_prefix, "signins")
    store = TableStore(service, prefix=table_prefix).ensure()
    assert lines(store.signins()) == ANSWERS["signins"]
    assert {cid: store.details(cid) for cid in (line["correlation_id"] for line in ANSWERS["signins"])} == ANSWERS[
        "details"
    ]
    clock = store.load_clock()
    assert clock is not None and [clock.watermark, clock.wall] == ANSWERS["clock"]
    # What follows on old rows: the open ones settle, unacknowledged reports are reported, retention expires.
    assert (
        lines(TableStore(service, prefix=table_prefix).ensure().settle(float("inf"), orphan_age=0.0))
        == ANSWERS["settled"]
    )
    assert TableStore(service, prefix=table_prefix).ensure().expire(float("inf")) == ANSWERS["expired"]


def test_a_request_folds_into_a_schema_1_row_and_the_row_is_marked(
    service: TableServiceClient, table_prefix: str
) -> None:
    load(service, table_prefix, "signins")
    store = TableStore(service, prefix=table_prefix).ensure()
    cid = open_signin()
    before = store.get(cid)
    assert before is not None
    (update,) = store.merge(requests_of(record(correlation_id=cid, status="unbound", code=1008)), T0 + 3600)
    assert update.changed and not update.created and not update.refused
    after = store.get(cid)
    assert after is not None and after.verdict == "unbound" and len(after.requests) == len(before.requests) + 1
    bucket = next(r["PartitionKey"] for r in fixture("signins.json")["rows"] if r["RowKey"] == signin_row(cid))
    assert store.table.get_entity(bucket, signin_row(cid))[SCHEMA] == SIGNINS.version


def test_outbox_and_breaker_rows_of_schema_1_read_as_that_release_read_them(
    service: TableServiceClient, table_prefix: str
) -> None:
    load(service, table_prefix, "outbox")
    load(service, table_prefix, "circuit")
    outbox = TableOutbox(service, table_prefix)
    entries = sorted(outbox.entries(), key=lambda e: e.destination)
    # Fields added since (a notification's incident, reason, severity) are left out of the comparison and held
    # to what that release meant: no incident, and the card headed by the highest severity of its firing alerts.
    assert [as_of_schema_1(entry_answer(e)) for e in entries] == ANSWERS["outbox"]
    for entry in entries:
        told = entry.notification
        firing = [a.severity for a in told.alerts if a.status == "firing"]
        assert told.incident == "" and told.severity == highest_severity(firing or [a.severity for a in told.alerts])
        assert told.status == ("firing" if firing else "resolved")
    assert sorted(e.id for e in outbox.due(T0 + 86400)) == ANSWERS["due"]
    breaker = outbox.load_breaker("webhook")
    assert [breaker.failures, breaker.open_until, breaker.opened] == ANSWERS["breaker"]


def as_of_schema_1(answer: dict[str, Any]) -> dict[str, Any]:
    """An outbox entry's answer with only the notification fields schema 1 stored."""
    known = {"receiver", "created_at", "alerts"}
    notification = {k: v for k, v in answer["notification"].items() if k in known}
    added = {"incident", "change", "way_back"}  # alert fields added since schema 1 (defaults when read back)
    notification["alerts"] = [{k: v for k, v in a.items() if k not in added} for a in notification["alerts"]]
    return {**answer, "notification": notification}


def test_dead_letter_lines_of_schema_1_give_back_what_was_kept() -> None:
    kept = [
        read_dead_letter_line(json.loads(line)) for line in (FIXTURES / "deadletters.jsonl").read_text().splitlines()
    ]
    assert [rejection_answer(r) for r in kept] == ANSWERS["dead_letters"]


# --- refusing a newer schema ---


def test_a_sign_in_of_a_newer_schema_is_left_untouched_and_its_requests_set_aside(
    service: TableServiceClient, table_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    cid = open_signin()
    load(service, table_prefix, "signins", {signin_row(cid): {SCHEMA: NEWER}, due_key(cid): {SCHEMA: NEWER}})
    store = TableStore(service, prefix=table_prefix).ensure()
    bucket = next(r["PartitionKey"] for r in fixture("signins.json")["rows"] if r["RowKey"] == signin_row(cid))
    before = store.table.get_entity(bucket, signin_row(cid))
    caplog.set_level(logging.WARNING, logger="bindwatch")
    newer = requests_of(record(correlation_id=cid, status="unbound", code=1008))
    fresh = requests_of(record(correlation_id="a-new-sign-in", status="bound"))
    refused, created = store.merge(newer + fresh, T0 + 3600)
    assert refused.refused == newer and not refused.changed and not refused.created and not refused.became_unbound
    assert created.created and not created.refused
    (line,) = refusals(caplog)
    assert line["rows"] == 1 and line["schemas"] == [str(NEWER)] and line["known"] == SIGNINS.version
    assert signin_row(cid) in line["first"] and "set aside" in line["left"]
    assert store.table.get_entity(bucket, signin_row(cid)).metadata["etag"] == before.metadata["etag"]
    # The lookup says it cannot show it (503) instead of showing a misread or "not found".
    with pytest.raises(Refused):
        store.get(cid)
    status, answer = lookup_response(StoreDetails(store), cid)
    assert status == 503 and answer["reason"] == "Refused"
    # Settling leaves its due row to the release that wrote it; every other open sign-in settles as before.
    settled = TableStore(service, prefix=table_prefix).ensure().settle(float("inf"), orphan_age=0.0)
    expected = [line for line in ANSWERS["settled"] if line["correlation_id"] != cid]
    assert [line for line in lines(settled) if line["correlation_id"] != "a-new-sign-in"] == expected
    assert store.table.get_entity(bucket, due_key(cid))[SCHEMA] == NEWER
    assert cid not in {s.correlation_id for s in store.signins()}  # an export leaves it out (and says so)


def test_a_report_row_of_a_newer_schema_is_not_adopted(
    service: TableServiceClient, table_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    report = next(r for r in fixture("signins.json")["rows"] if r["RowKey"].startswith("r|"))
    load(service, table_prefix, "signins", {report["RowKey"]: {SCHEMA: NEWER}})
    caplog.set_level(logging.WARNING, logger="bindwatch")
    settled = TableStore(service, prefix=table_prefix).ensure().settle(float("inf"), orphan_age=0.0)
    cid = report["RowKey"].removeprefix("r|")
    assert lines(settled) == [line for line in ANSWERS["settled"] if line["correlation_id"] != cid]
    assert any(line["first"].endswith(report["RowKey"]) for line in refusals(caplog))
    table = open_table(service, table_prefix + "signins")
    assert table.get_entity(report["PartitionKey"], report["RowKey"])[SCHEMA] == NEWER


def test_retention_leaves_a_sign_in_of_a_newer_schema(service: TableServiceClient, table_prefix: str) -> None:
    finals = [r for r in fixture("signins.json")["rows"] if r["RowKey"].startswith("f|")]
    final = finals[0]
    load(service, table_prefix, "signins", {final["RowKey"]: {SCHEMA: NEWER}})
    assert TableStore(service, prefix=table_prefix).ensure().expire(float("inf")) == len(finals) - 1
    table = open_table(service, table_prefix + "signins")
    assert table.get_entity(final["PartitionKey"], final["RowKey"])[SCHEMA] == NEWER
    assert table.get_entity(final["PartitionKey"], "s|" + final["RowKey"].split("|", 2)[2])


def test_a_clock_of_a_newer_schema_is_neither_read_nor_moved(service: TableServiceClient, table_prefix: str) -> None:
    load(service, table_prefix, "signins", {"clock": {SCHEMA: NEWER, "watermark": 9.0e9}})
    store = TableStore(service, prefix=table_prefix).ensure()
    assert store.load_clock() is None
    store.save_clock(ClockState(watermark=T0 + 7200, wall=T0 + 7200))
    clock = store.table.get_entity("meta", "clock")
    assert clock["watermark"] == 9.0e9 and clock[SCHEMA] == NEWER


def test_outbox_rows_of_a_newer_schema_are_left_to_their_release(
    service: TableServiceClient, table_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    rows = {r["state"]: r for r in fixture("outbox.json")["rows"]}
    pending, delivered = rows["pending"], rows["delivered"]
    change = {pending["RowKey"]: {SCHEMA: NEWER}, delivered["RowKey"]: {SCHEMA: NEWER}}
    load(service, table_prefix, "outbox", change)
    load(service, table_prefix, "circuit", {"webhook": {SCHEMA: NEWER}})
    outbox = TableOutbox(service, table_prefix)
    caplog.set_level(logging.WARNING, logger="bindwatch")
    assert outbox.due(T0 + 86400) == []  # the only pending entry is the newer release's: not sent from here
    assert [e.state for e in outbox.entries()] == ["failed"]
    with pytest.raises(Refused):
        outbox.get(pending["PartitionKey"], pending["RowKey"])
    assert outbox.expire(T0 + 365 * 86400) == 1  # the failed one; the newer delivered one stays
    assert outbox.get("webhook", rows["failed"]["RowKey"]) is None
    assert outbox.load_breaker("webhook") == BreakerState()  # treated as closed, not misread
    outbox.save_breaker("webhook", BreakerState(failures=1))
    breaker = open_table(service, table_prefix + "circuit").get_entity("circuit", "webhook")
    assert breaker[SCHEMA] == NEWER and breaker["failures"] == 5  # never overwritten
    assert {line["table"] for line in refusals(caplog)} == {table_prefix + "outbox", table_prefix + "circuit"}


def test_a_dead_letter_line_of_a_newer_schema_is_refused() -> None:
    line = json.loads((FIXTURES / "deadletters.jsonl").read_text().splitlines()[0])
    for mark in (NEWER, "2", 0, True, 1.0, [1]):
        with pytest.raises(Refused):
            read_dead_letter_line({**line, SCHEMA: mark})
    assert read_dead_letter_line({**line, SCHEMA: DEAD_LETTERS.version}).raw == base64.b64decode(line["raw_base64"])


def test_every_table_writes_its_schema() -> None:
    """The marks the rows carry from now on: bump one of these and the fixture tests say what else must change."""
    assert (SIGNINS.version, OUTBOX.version, CIRCUIT.version, DEAD_LETTERS.version) == (1, 1, 1, 1)


# --- the mechanism ---


def test_older_rows_are_brought_up_step_by_step_in_place() -> None:
    steps: list[int] = []

    def one_to_two(row: Any) -> None:
        steps.append(1)
        row["name"] = row.pop("old_name")

    def two_to_three(row: Any) -> None:
        steps.append(2)
        row["size"] = int(row["size"])

    schema = Schema("example", 3, {1: one_to_two, 2: two_to_three})
    row = {"old_name": "x", "size": "7"}
    assert schema.read(row) is row and row == {"name": "x", "size": 7, SCHEMA: 3} and steps == [1, 2]
    assert schema.read({SCHEMA: 2, "name": "y", "size": "1"}) == {"name": "y", "size": 1, SCHEMA: 3}
    assert schema.read({SCHEMA: 3, "name": "z", "size": 2}) == {SCHEMA: 3, "name": "z", "size": 2}
    assert schema.mark({"name": "w"}) == {"name": "w", SCHEMA: 3}
    with pytest.raises(ValueError, match="no upgrade from schema"):
        Schema("gap", 3, {1: one_to_two})


@given(st.dictionaries(st.text(max_size=8), st.integers() | st.text() | st.none() | st.booleans() | st.floats()))
def test_a_row_is_read_in_a_version_this_code_knows_or_refused(row: dict[str, Any]) -> None:
    schema = Schema("example", 2, {1: lambda r: r.update(upgraded=True)})
    mark = row.get(SCHEMA)
    try:
        read = schema.read(dict(row))
    except Refused as error:
        assert error.found == mark and error.known == 2
        assert not (mark is None or (type(mark) is int and UNMARKED <= mark <= 2))
        return
    assert read[SCHEMA] == 2 and (read.get("upgraded") is True) == (mark in (None, 1))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
)
LINE_KEYS = st.sampled_from(["reason", "raw_base64", "sequence_number", "record_index", "enqueued_time", SCHEMA])


A_LINE = json.loads((FIXTURES / "deadletters.jsonl").read_text().splitlines()[0])
SPOILT = st.builds(lambda extra: {**A_LINE, **extra}, st.dictionaries(LINE_KEYS, JSON))  # a real line, fields spoilt


@given(st.dictionaries(LINE_KEYS | st.text(max_size=8), JSON) | SPOILT)
def test_any_json_object_is_a_dead_letter_or_a_value_error(line: dict[str, Any]) -> None:
    """A re-drive reads outside bytes: whatever the line holds, it gets a rejection back or a ValueError."""
    try:
        kept = read_dead_letter_line(line)
    except ValueError:
        return
    assert isinstance(kept, Rejection) and kept.raw == base64.b64decode(line["raw_base64"])
