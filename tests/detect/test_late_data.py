"""Late and out-of-order data: a sign-in far behind the event clock is judged, stored and given its verdict, but
not counted in detection windows (docs/rules.md, "What is counted"); a clock that jumps ahead resolves what fired.

The case a tester found: one December record read before the March samples. The samples are then months behind
the event clock: every sign-in must still get its verdict, none may raise an alert, and the unbound ones are the
detector's `late`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.core.alert import Notification
from shared.core.clock import FixedClock
from shared.core.message import Message, Origin
from shared.core.timestamp import parse_time
from shared.detect.detector import Detector
from shared.detect.lifecycle import FIRING
from shared.detect.rules import load_rules
from shared.detect.state import MemoryDetectionStore
from shared.ingest.files import messages_from
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.ingest.replay import Replay
from shared.synth.records import BASE_TIME, body, record

ROOT = Path(__file__).resolve().parents[2]
SETTLE = 600.0
DECEMBER = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
# Past every record here, whatever day the tests run: December is history, never "from the future".
WALL = datetime(2027, 1, 1, tzinfo=UTC).timestamp()


def samples() -> list[Message]:
    return list(messages_from([str(ROOT / "samples")]))


def december(at: datetime = DECEMBER) -> Message:
    """One unbound sign-in, dated months after the samples."""
    return Message(body([record(at=at, status="unbound", code=1008, correlation_id="december")]), Origin("december"))


def new_detector(handed: list[Notification] | None = None) -> Detector:
    handoff = handed.extend if handed is not None else None
    return Detector(load_rules(), MemoryDetectionStore(), ["teams", "pagerduty"], handoff=handoff)


def replay(found: Detector, messages: Iterable[Message], batch: int = 10) -> list[dict[str, Any]]:
    pipeline = Pipeline(MemoryStore(), SETTLE, observers=[found], wall=FixedClock(WALL))
    return [line for outcome in Replay(pipeline, batch_size=batch).run(messages) for line in outcome.lines]


def verdicts(lines: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Each sign-in's last verdict (a revised sign-in is printed again)."""
    return {line["correlation_id"]: line["verdict"] for line in lines if line["type"] == "verdict"}


def alerts(lines: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["type"] == "alert"]


def still_firing(found: Detector) -> list[str]:
    return [s.fingerprint for s in found.store.load_states().alerts.values() if s.status == FIRING]


def alone() -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The samples by themselves: their verdicts and alerts, what the other orders are held to."""
    lines = replay(new_detector(), samples())
    return verdicts(lines), alerts(lines)


# --- December first: the samples are late ---


@pytest.mark.parametrize("batch", [1, 10, 1000])  # 1000: the December record and the samples in one batch
def test_samples_behind_a_december_record_are_judged_but_not_counted(batch: int) -> None:
    expected, fired_alone = alone()
    assert fired_alone, "the samples alone must alert, or this test proves nothing"
    found = new_detector()
    lines = replay(found, [december(), *samples()], batch)
    got = verdicts(lines)
    assert got.pop("december") == "unbound"
    assert got == expected  # every March sign-in judged, with the verdict it has in order
    assert alerts(lines) == []  # March windows are months behind the clock: judged already, never counted
    assert found.late == sum(v == "unbound" for v in expected.values())  # each late unbound sign-in, once
    assert found.late_judged == len(expected)
    assert still_firing(found) == []


# --- December last: the clock jumps forward ---


def test_a_december_record_after_the_samples_resolves_what_they_fired() -> None:
    handed: list[Notification] = []
    found = new_detector(handed)
    pipeline = Pipeline(MemoryStore(), SETTLE, observers=[found], wall=FixedClock(WALL))
    messages = samples()
    lines: list[dict[str, Any]] = []
    for start in range(0, len(messages), 10):
        lines += pipeline.ingest(messages[start : start + 10]).lines
    lines += pipeline.ingest([december()]).lines  # its own batch: the samples were evaluated before the jump
    lines += pipeline.drain().lines
    fired = {a["fingerprint"] for a in alerts(lines) if a["status"] == "firing"}
    resolved = {a["fingerprint"] for a in alerts(lines) if a["status"] == "resolved"}
    assert {a["fingerprint"] for a in alone()[1]} == fired  # March alerted as it does alone
    assert fired == resolved
    assert still_firing(found) == []
    assert found.late == 0  # the samples came before the clock moved on: none was late
    opened = {(n.receiver, n.incident) for n in handed if n.reason == "opened"}
    told_resolved = {(n.receiver, n.incident) for n in handed if n.reason == "resolved"}
    assert opened and opened == told_resolved  # every destination told of an incident is told it ended


def test_samples_in_one_batch_with_a_december_record_are_late_not_lost() -> None:
    """A batch that moves the clock months is evaluated from MAX_CATCHUP before its newest record only: the
    older sign-ins in it land in no evaluated window, so they are counted as late rather than silently kept."""
    expected, _ = alone()
    found = new_detector()
    lines = replay(found, [*samples(), december()], batch=1000)
    got = verdicts(lines)
    got.pop("december")
    assert got == expected
    assert alerts(lines) == []
    assert found.late == sum(v == "unbound" for v in expected.values())
    assert still_firing(found) == []


# --- late history is no warm-up ---


def to_december(message: Message) -> Message:
    """A sample message moved to December 1st, its sign-ins renamed (new sign-ins, not copies of March's)."""
    moved = message.body.replace(b"2026-03-10", b"2026-12-01").replace(b'"correlationId":"', b'"correlationId":"dec-')
    return Message(moved, Origin(f"december:{message.origin.source}"))


def times(message: Message) -> list[float]:
    """When a message's sign-ins happened (none for a message that is not an Event Hub body of dated records)."""
    try:
        records = orjson.loads(message.body)["records"]
        found = [parse_time(r["properties"]["createdDateTime"]) for r in records]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return []
    return [t for t in found if t is not None]


def first_at(message: Message) -> float:
    return min(times(message), default=float("inf"))


def test_late_sign_ins_do_not_warm_a_rule_up() -> None:
    """A December feed that starts late in a burst must wait out the rules' 30-minute warm-up.

    With the March samples read after its first message (months late, counted in no window), the rules still
    took March as the start of their traffic, thought themselves warmed up, and fired four alerts on December's
    burst that December alone does not fire."""
    burst = list(messages_from([str(ROOT / "samples" / "02-burst.jsonl")]))
    feed = [to_december(m) for m in burst if times(m)]
    feed = [m for m in feed if first_at(m) >= (DECEMBER + timedelta(hours=2, minutes=52)).timestamp()]
    assert len(feed) > 5
    quiet = alerts(replay(new_detector(), feed))
    found = new_detector()
    lines = replay(found, [feed[0], *samples(), *feed[1:]])
    assert found.late > 0  # the samples were late
    assert alerts(lines) == quiet  # and changed nothing December decides


# --- a record dated past the wall clock (live: the wall follows the data) ---


def live(messages: list[Message], bogus: Message | None) -> tuple[list[tuple[str, str, str]], Detector]:
    """Each message as its own invocation, the wall clock three minutes past its newest record, as live."""
    found = new_detector()
    wall = FixedClock(BASE_TIME.timestamp())
    pipeline = Pipeline(MemoryStore(), SETTLE, observers=[found], wall=wall)
    lines: list[dict[str, Any]] = []
    if bogus is not None:
        lines += pipeline.ingest([bogus]).lines
    for message in messages:
        wall.at = max(wall.at, max(times(message)) + 180)
        lines += pipeline.ingest([message]).lines
    lines += pipeline.drain().lines
    return [(a["rule"], a["fingerprint"], a["status"]) for a in alerts(lines)], found


def test_a_record_dated_past_the_wall_clock_does_not_make_live_traffic_late() -> None:
    """Live, the event clock ignores a record more than FUTURE_TOLERANCE past the wall clock (it is judged at the
    clock instead), so one bogus date cannot put real traffic behind the clock. Replay's wall clock is today, so
    there a bogus date between the data and today does move it: the first test above is what happens then."""
    messages = [m for m in samples() if times(m)]
    expected, _ = live(messages, None)
    assert expected
    got, found = live(messages, december(BASE_TIME + timedelta(days=200)))
    assert got == expected
    assert found.late == 0
