"""Rules 1, 6-9: requests gather into sign-ins, across messages, batches, order and copies."""

from __future__ import annotations

import itertools
import random
from datetime import timedelta

import pytest

from shared.core.message import Message, Origin
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.ingest.replay import Replay
from shared.synth.records import BASE_TIME, body, policy, record

SETTLE = 600.0


def replay(bodies: list[bytes], batch_size: int = 1, settle: float = SETTLE) -> tuple[list[dict], dict]:
    run = Replay(Pipeline(MemoryStore(), settle), batch_size=batch_size)
    messages = [Message(b, Origin(source=f"test:{i}")) for i, b in enumerate(bodies)]
    lines = [line for outcome in run.run(messages) for line in outcome.lines]
    return lines, run.summary()


def verdicts(lines: list[dict]) -> dict[str, dict]:
    return {line["correlation_id"]: line for line in lines if line["type"] == "verdict"}


def test_rule1_copies_of_a_request_are_one_request() -> None:
    copy = record(request_id="r1", correlation_id="c1", status="bound", code=0)
    lines, summary = replay([body([copy, copy]), body([copy])])
    assert verdicts(lines)["c1"]["requests"] == 1
    assert (summary["records"], summary["duplicates"], summary["requests"]) == (3, 2, 1)


def test_rule1_same_request_id_in_two_signins_counts_in_each() -> None:
    a = record(request_id="r1", correlation_id="c1", status="bound")
    b = record(request_id="r1", correlation_id="c2", status="unbound", code=1002)
    found = verdicts(replay([body([a, b])])[0])
    assert (found["c1"]["verdict"], found["c2"]["verdict"]) == ("bound", "unbound")


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_rule6_copies_merge_to_worst_binding_and_strongest_enforcement(order: tuple[int, ...]) -> None:
    copies = [
        record(request_id="r1", correlation_id="c1", status=None),
        record(request_id="r1", correlation_id="c1", status="bound", policies=[policy(result="success")]),
        record(
            request_id="r1",
            correlation_id="c1",
            status="unbound",
            code=1008,
            policies=[policy(result="reportOnlyFailure", not_satisfied=["SignInTokenProtection"])],
        ),
    ]
    line = verdicts(replay([body([copies[i]]) for i in order])[0])["c1"]
    assert (line["verdict"], line["enforcement"], line["status_codes"]) == ("unbound", "enforced", [1008])
    assert (line["requests"], line["unbound_requests"]) == (1, 1)


def test_rule7_key_falls_back_to_top_level_correlation_then_request_id() -> None:
    top_only = record(request_id="r1", correlation_id="top", status="bound")
    top_only["properties"].pop("correlationId")
    neither = record(request_id="lonely", correlation_id="x", status="bound")
    neither["properties"].pop("correlationId")
    neither.pop("correlationId")
    found = verdicts(replay([body([top_only, neither])])[0])
    assert set(found) == {"top", "lonely"}
    assert found["lonely"]["requests"] == 1


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["bound", "bound"], "bound"),
        (["bound", "unbound"], "unbound"),
        (["unbound", None], "unbound"),
        (["bound", None], "bound"),
        ([None, None], "unevaluated"),
        (["none"], "unevaluated"),
    ],
)
def test_rule8_one_unbound_request_fails_the_signin(statuses: list[str | None], expected: str) -> None:
    records = [record(correlation_id="c1", status=s, code=1002 if s == "unbound" else 0) for s in statuses]
    line = verdicts(replay([body(records)])[0])["c1"]
    assert line["verdict"] == expected
    assert line["requests"] == len(statuses)
    assert line["unbound_requests"] == statuses.count("unbound")


def test_rule8_enforcement_is_the_strongest_of_the_requests() -> None:
    records = [
        record(correlation_id="c1", status="bound", policies=[policy(result="reportOnlySuccess")]),
        record(correlation_id="c1", status="bound", policies=[policy(result="success")]),
        record(correlation_id="c1", status="bound"),
    ]
    assert verdicts(replay([body(records)])[0])["c1"]["enforcement"] == "enforced"


def test_status_codes_are_the_sorted_distinct_codes_of_unbound_requests() -> None:
    records = [
        record(correlation_id="c1", status="unbound", code=1008),
        record(correlation_id="c1", status="unbound", code=1002),
        record(correlation_id="c1", status="unbound", code="1008"),
        record(correlation_id="c1", status="bound", code=0),
    ]
    assert verdicts(replay([body(records)])[0])["c1"]["status_codes"] == [1002, 1008]


def test_rule9_requests_across_messages_and_batches_make_one_signin() -> None:
    parts = [record(correlation_id="c1", status="bound", at=BASE_TIME + timedelta(minutes=m)) for m in range(4)]
    filler = [record(status="bound", at=BASE_TIME + timedelta(minutes=m)) for m in range(4)]
    bodies = [body([p, f]) for p, f in zip(parts, filler, strict=True)]
    lines, _ = replay(bodies, batch_size=1)
    assert verdicts(lines)["c1"]["requests"] == 4
    assert sum(1 for line in lines if line.get("correlation_id") == "c1") == 1


def test_rule9_settles_after_the_window_of_event_time_and_not_before() -> None:
    first = record(correlation_id="early", status="bound", at=BASE_TIME)
    later = [record(status="bound", at=BASE_TIME + timedelta(minutes=m)) for m in (5, 9, 11)]
    run = Replay(Pipeline(MemoryStore(), SETTLE), batch_size=1)
    seen_at = {}
    for i, outcome in enumerate(run.run([Message(body([r])) for r in [first, *later]])):
        for line in outcome.lines:
            seen_at[line["correlation_id"]] = i
    assert seen_at["early"] == 3  # final when the clock passed 10 minutes of event time (the 11-minute record)


def test_rule9_a_later_request_still_updates_a_final_signin() -> None:
    first = record(correlation_id="c1", status="bound", at=BASE_TIME)
    clock_mover = record(status="bound", at=BASE_TIME + timedelta(minutes=20))
    late = record(correlation_id="c1", status="unbound", code=1003, at=BASE_TIME + timedelta(minutes=1))
    lines, summary = replay([body([first]), body([clock_mover]), body([late])])
    revisions = [line for line in lines if line.get("correlation_id") == "c1"]
    assert [(r["verdict"], r["revision"]) for r in revisions] == [("bound", 1), ("unbound", 2)]
    assert summary["unbound"] == 1 and summary["revised"] == 1


def test_redelivery_after_final_does_not_emit_again() -> None:
    first = record(correlation_id="c1", status="bound", at=BASE_TIME)
    clock_mover = record(status="bound", at=BASE_TIME + timedelta(minutes=20))
    lines, summary = replay([body([first]), body([clock_mover]), body([first])])
    assert sum(1 for line in lines if line.get("correlation_id") == "c1") == 1
    assert summary["duplicates"] == 1


def test_verdicts_do_not_depend_on_order_batching_or_redelivery() -> None:
    rng = random.Random(5)
    records = []
    for n in range(60):
        correlation_id = f"c{n}"
        for _ in range(rng.randint(1, 4)):
            status = rng.choice(["bound", "unbound", None, "none"])
            records.append(
                record(
                    correlation_id=correlation_id,
                    status=status,
                    code=rng.choice([1002, 1008]),
                    at=BASE_TIME + timedelta(seconds=rng.randrange(120)),
                )
            )
    clean, clean_summary = replay([body(records[i : i + 7]) for i in range(0, len(records), 7)], batch_size=3)
    shuffled_records = records + rng.sample(records, 40)
    rng.shuffle(shuffled_records)
    messy, messy_summary = replay([body(shuffled_records[i : i + 5]) for i in range(0, len(shuffled_records), 5)])
    strip = {"first_seen", "last_seen", "revision", "device_os", "trust_type", "client_app", "user"}
    assert {k: {f: v for f, v in line.items() if f not in strip} for k, line in verdicts(clean).items()} == {
        k: {f: v for f, v in line.items() if f not in strip} for k, line in verdicts(messy).items()
    }
    for key in ("signins", "bound", "unbound", "unevaluated", "requests"):
        assert clean_summary[key] == messy_summary[key]
    assert messy_summary["duplicates"] == 40
