"""Reading the stream: mixed categories, drift, and everything that must be rejected but not crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.binding import Binding
from shared.core.message import Message, Origin
from shared.core.record import read_message
from shared.core.request import judge
from shared.core.timestamp import parse_time
from shared.core.verdict import verdict_line
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.storage.signin_rows import state_properties
from shared.synth.records import body, policy, record, service_principal_record


def read(data: bytes):
    return read_message(Message(data, Origin(source="t", partition="3", offset="42", sequence_number=7)))


def test_only_user_signin_categories_are_judged_the_rest_counted() -> None:
    audit = {"category": "AuditLogs", "properties": {"id": "a"}}
    interactive = record(category="SignInLogs")
    reading = read(body([record(), interactive, service_principal_record(), audit]))
    assert [a.category for a in reading.accepted] == ["NonInteractiveUserSignInLogs", "SignInLogs"]
    assert dict(reading.skipped) == {"ServicePrincipalSignInLogs": 1, "AuditLogs": 1}
    assert reading.rejections == []


def test_a_record_naming_no_category_is_judged_by_what_it_holds() -> None:
    user = {"properties": {"id": "x", "userPrincipalName": "a@contoso.com"}}
    non_interactive = {"properties": {"id": "y", "isInteractive": False}}
    typed = {"properties": {"id": "z", "signInEventTypes": ["nonInteractiveUser"], "isInteractive": True}}
    robot = {"properties": {"id": "s", "servicePrincipalId": "sp-1"}}
    reading = read(body([user, non_interactive, typed, robot]))
    assert [a.category for a in reading.accepted] == ["SignInLogs", "NonInteractiveUserSignInLogs"] * 1 + [
        "NonInteractiveUserSignInLogs"
    ]
    assert dict(reading.skipped) == {"ServicePrincipalSignInLogs": 1}


def test_category_is_matched_case_insensitively() -> None:
    rec = record()
    rec["category"] = "signinlogs"
    assert read(body([rec])).accepted[0].category == "SignInLogs"


def test_message_not_json_is_one_rejection_with_its_origin() -> None:
    reading = read(b"\x00\xffnot json")
    (rejection,) = reading.rejections
    assert rejection.reason == "message is not JSON"
    assert rejection.raw == b"\x00\xffnot json"
    assert (rejection.origin.partition, rejection.origin.offset, rejection.origin.sequence_number) == ("3", "42", 7)


def test_records_not_a_list_is_one_rejection() -> None:
    for data in (b'{"records": {}}', b'{"other": 1}', b"[1]", b'"text"'):
        assert len(read(data).rejections) == 1


def test_bad_records_are_rejected_each_and_the_rest_survive() -> None:
    no_props = record()
    no_props.pop("properties")
    no_id = record()
    no_id["properties"].pop("id")
    blank_id = record()
    blank_id["properties"]["id"] = "  "
    bad_string_props = record()
    bad_string_props["properties"] = "{not json"
    reading = read(body([1, "x", None, no_props, no_id, blank_id, bad_string_props, record()]))
    assert len(reading.accepted) == 1
    assert [r.index for r in reading.rejections] == [0, 1, 2, 3, 4, 5, 6]
    assert {r.reason for r in reading.rejections} == {
        "record is not a JSON object",
        "record has no 'properties' object",
        "record has no 'properties.id'",
    }


def test_drift_is_taken_in_stride() -> None:
    rec = record(status="Unbound", code="1006")
    rec.pop("Level")
    rec["level"] = "Informational"
    rec["durationMs"] = "0"
    rec["surpriseField"] = {"nested": [1, 2]}
    rec["properties"] = json.dumps(rec["properties"])  # properties as an escaped JSON string
    (accepted,) = read(body([rec])).accepted
    request = judge(accepted, fallback_time=0.0)
    assert (request.binding, request.code) == (Binding.UNBOUND, 1006)


def test_time_formats_and_fallbacks() -> None:
    iso7 = parse_time("2026-03-10T14:05:58.1234567+00:00")
    assert iso7 == datetime(2026, 3, 10, 14, 5, 58, 123456, tzinfo=UTC).timestamp()
    assert parse_time("2026-03-10T14:07:41Z") == datetime(2026, 3, 10, 14, 7, 41, tzinfo=UTC).timestamp()
    assert parse_time("11/14/2025 1:48:53 AM") == datetime(2025, 11, 14, 1, 48, 53, tzinfo=UTC).timestamp()
    assert parse_time("yesterday") is None and parse_time(12) is None
    rec = record()
    rec["properties"]["createdDateTime"] = "garbage"
    rec["time"] = "11/14/2025 1:48:53 AM"
    assert judge(read(body([rec])).accepted[0], 0.0).at == parse_time("11/14/2025 1:48:53 AM")
    rec["time"] = None
    assert judge(read(body([rec])).accepted[0], 123.0).at == 123.0


def test_device_pii_removed_and_guid_upn_are_handled() -> None:
    rec = record(user="5a3b2c1d-0000-4000-8000-000000000000")
    rec["properties"]["deviceDetail"]["deviceId"] = "PII Removed"
    request = judge(read(body([rec])).accepted[0], 0.0)
    assert request.device_id == "" and request.user == "5a3b2c1d-0000-4000-8000-000000000000"


def test_legacy_binding_control_from_2023_counts() -> None:
    tp = policy(result="failure", controls=["Binding"], not_satisfied=["Binding"])
    request = judge(read(body([record(status=None, policies=[tp])])).accepted[0], 0.0)
    assert request.binding is Binding.UNBOUND


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "category": st.sampled_from(["SignInLogs", "NonInteractiveUserSignInLogs", "AuditLogs", ""]) | json_values,
        "properties": st.fixed_dictionaries(
            {},
            optional={
                "id": st.text(max_size=8) | json_values,
                "correlationId": json_values,
                "createdDateTime": st.text(max_size=30) | json_values,
                "tokenProtectionStatusDetails": json_values,
                "appliedConditionalAccessPolicies": json_values,
                "deviceDetail": json_values,
                "userPrincipalName": json_values,
            },
        )
        | json_values,
        "time": json_values,
        "correlationId": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(fields | json_values, max_size=8))
def test_no_record_crashes_the_reader_or_is_lost(records: list) -> None:
    reading = read(json.dumps({"records": records}).encode())
    assert len(reading.accepted) + sum(reading.skipped.values()) + len(reading.rejections) == len(records)
    for accepted in reading.accepted:
        judge(accepted, 0.0)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_no_bytes_crash_the_reader(data: bytes) -> None:
    reading = read(data)
    assert len(reading.rejections) <= 1 or reading.accepted == []


hostile = st.one_of(
    st.sampled_from(
        ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2099-01-01T00:00:00Z", "1/1/1 1:1:1 AM"]
    ),
    st.sampled_from(["99999999999999999999", "9" * 5000, "-5", "2147483648", "1008"]),
    st.integers(min_value=-(2**70), max_value=2**70),
)
hostile_records = st.builds(
    lambda at, code, status: {
        "category": "SignInLogs",
        "properties": {
            "id": "r1",
            "correlationId": "c1",
            "createdDateTime": at,
            "tokenProtectionStatusDetails": {"signInSessionStatus": status, "signInSessionStatusCode": code},
        },
    },
    hostile | st.text(max_size=30),
    hostile,
    st.sampled_from(["unbound", "bound", "none"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(fields | hostile_records, max_size=5), max_size=6))
def test_the_pipeline_accounts_for_every_record(messages: list[list]) -> None:
    """Nothing from outside crashes the pipeline or what it writes: verdict lines and stored state serialise."""
    pipeline = Pipeline(MemoryStore(), 600.0)
    outcome = pipeline.ingest([Message(json.dumps({"records": m}).encode()) for m in messages])
    tally = outcome.tally
    total = sum(len(m) for m in messages)
    assert tally.records + sum(tally.skipped.values()) + tally.rejected == total
    assert tally.requests + tally.duplicates == tally.records
    drained = pipeline.drain()
    assert drained.tally.finals == tally.signins
    for signin in drained.finals:
        orjson.dumps(verdict_line(signin))
        state_properties(signin)


def test_extreme_times_codes_and_future_dates_do_not_break_a_batch() -> None:
    odd = [
        record(correlation_id="year1", status="unbound", code="99999999999999999999"),
        record(correlation_id="big", status="unbound", code="9" * 5000),
        record(correlation_id="future", status="bound"),
    ]
    odd[0]["properties"]["createdDateTime"] = "0001-01-01T00:00:00+01:00"
    odd[2]["properties"]["createdDateTime"] = "2099-01-01T00:00:00Z"
    pipeline = Pipeline(MemoryStore(), 600.0)
    outcome = pipeline.ingest([Message(body(odd), Origin(enqueued_time=1_773_129_600.0))])
    assert outcome.tally.records == 3 and not outcome.rejections
    finals = {s.correlation_id: s for s in pipeline.drain().finals}
    assert finals["year1"].status_codes == [] and finals["big"].status_codes == []
    assert finals["future"].first_seen == 1_773_129_600.0  # dated in 2099: the enqueued time stands in
    for signin in finals.values():
        orjson.dumps(verdict_line(signin))


def _judged_both_ways(data: bytes) -> tuple[list, list]:
    from shared.core.record import Reading, _read_lenient

    message = Message(data)
    fast = read_message(message)
    lenient = Reading()
    _read_lenient(message, lenient)
    as_requests = lambda reading: [judge(a, 0.0) for a in reading.accepted]  # noqa: E731
    return (as_requests(fast), dict(fast.skipped), len(fast.rejections)), (
        as_requests(lenient),
        dict(lenient.skipped),
        len(lenient.rejections),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(fields | json_values, max_size=8))
def test_the_narrow_fast_path_judges_exactly_as_the_lenient_path(records: list) -> None:
    fast, lenient = _judged_both_ways(json.dumps({"records": records}).encode())
    assert fast == lenient


def test_fast_and_lenient_paths_agree_on_the_samples() -> None:
    from pathlib import Path

    for line in Path("samples/01-rollout.jsonl").read_bytes().splitlines()[:20]:
        fast, lenient = _judged_both_ways(line)
        assert fast == lenient and fast[0]


# --- one record that no decoder reads rejects that record only (issue 13, finding 7) ---

POISONS = {
    "deep nesting in a field never read": b'"junk":' + b"[" * 5000 + b"]" * 5000,
    "a number of 4,400 digits in a read field": b'"tokenProtectionStatusDetails":{"signInSessionStatusCode":'
    + b"9" * 4400
    + b"}",
    "bytes that are not UTF-8 in a read field": b'"userPrincipalName":"\xff\xfe"',
}


def _poisoned(poison: bytes) -> bytes:
    """A record whose properties carry the poison (the top level keeps its own fields)."""
    raw = orjson.dumps(record(correlation_id="poisoned", status=None))
    return raw.replace(b'"properties":{', b'"properties":{' + poison + b",", 1)


@pytest.mark.parametrize("name", sorted(POISONS))
def test_one_undecodable_record_rejects_only_itself(name: str) -> None:
    bad = _poisoned(POISONS[name])
    good = [orjson.dumps(record(correlation_id=f"good{i}")) for i in range(3)]
    message = Message(b'{"records":[' + b",".join([good[0], bad, good[1], good[2]]) + b"]}", Origin(source="t"))
    reading = read_message(message)
    assert sorted(a.properties.correlationId for a in reading.accepted) == ["good0", "good1", "good2"]
    (rejection,) = reading.rejections
    assert rejection.index == 1 and rejection.raw == bad


@given(st.integers(0, 6), st.sampled_from(sorted(POISONS)), st.integers(1, 6))
def test_a_poisoned_record_anywhere_costs_one_rejection(position: int, name: str, count: int) -> None:
    items = [orjson.dumps(record(correlation_id=f"ok{i}")) for i in range(count)]
    items.insert(min(position, count), _poisoned(POISONS[name]))
    reading = read_message(Message(b'{"records":[' + b",".join(items) + b"]}"))
    assert len(reading.accepted) == count and len(reading.rejections) == 1
