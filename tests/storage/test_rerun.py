"""A failed invocation is run again with the same events: its counts land exactly once, wherever it failed.

Event Hub retries redeliver the same events; `batch_key` recognises them. The sign-in store tells a
rerun the transitions its first run wrote, and window buckets remember the batches they took in.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient

from shared.app import compose
from shared.core.message import Message, Origin
from shared.ingest.pipeline import Pipeline, batch_key
from shared.settings import load_settings
from shared.storage.detection_table import TableDetectionStore
from shared.storage.signin_table import TableStore

ROOT = Path(__file__).resolve().parents[2]
ENQUEUED = datetime(2026, 3, 10, 12, tzinfo=UTC).timestamp()


class Crash(Exception):
    pass


def batches() -> list[list[Message]]:
    lines = [line for line in (ROOT / "samples" / "02-burst.jsonl").read_bytes().splitlines() if line.strip()]
    messages = [
        Message(line, Origin("eventhub", partition="0", offset=str(i * 10), sequence_number=i, enqueued_time=ENQUEUED))
        for i, line in enumerate(lines)
    ]
    return [messages[i : i + 4] for i in range(0, len(messages), 4)]


def pipeline(connection: str, prefix: str) -> Pipeline:
    service = TableServiceClient.from_connection_string(connection)
    detector = compose.detector(load_settings(STATE_TABLE_PREFIX=prefix), TableDetectionStore(service, prefix))
    return Pipeline(TableStore(service, prefix=prefix).ensure(), 600.0, observers=[detector])


def counted(connection: str, prefix: str) -> Counter[tuple[str, str, str]]:
    store = TableDetectionStore(TableServiceClient.from_connection_string(connection), prefix)
    totals: Counter[tuple[str, str, str]] = Counter()
    for bucket in store.merge_buckets({}, 0, 10**9).values():
        for rule, groups in bucket.items():
            for key, counts in groups.items():
                totals[rule, key, "judged"] += counts.judged
                totals[rule, key, "unbound"] += counts.unbound
    return totals


def run(connection: str, prefix: str, fail_at: int | None = None, where: str = "") -> None:
    """Run every batch; batch `fail_at` fails once at `where` and is then run again, as the host would."""
    target = pipeline(connection, prefix)
    assert fail_at is None or fail_at < len(batches())
    for index, batch in enumerate(batches()):
        if index == fail_at:
            with pytest.MonkeyPatch.context() as patch, pytest.raises(Crash):
                patch.setattr(type(target.observers[0].store), where, _fail)
                target.ingest(batch)
        target.ingest(batch)


def _fail(*args: object, **kwargs: object) -> None:
    raise Crash


@pytest.mark.parametrize(
    "where",
    [
        "merge_buckets",  # after the sign-ins were written, before any count: the rerun must count them
        "save_alert",  # after the counts were written: the rerun must not count them again
    ],
)
def test_a_rerun_counts_exactly_once(storage_connection: str, table_prefix: str, where: str) -> None:
    run(storage_connection, table_prefix + "clean")
    clean = counted(storage_connection, table_prefix + "clean")
    assert sum(v for (_, _, kind), v in clean.items() if kind == "unbound") > 0
    fail_at = 3 if where == "merge_buckets" else _first_alerting_batch(storage_connection, table_prefix)
    run(storage_connection, table_prefix + "crash", fail_at=fail_at, where=where)
    assert counted(storage_connection, table_prefix + "crash") == clean


def _first_alerting_batch(connection: str, prefix: str) -> int:
    """The first batch whose evaluation writes an alert state (so save_alert is reached after the counts)."""
    target = pipeline(connection, prefix + "probe")
    for index, batch in enumerate(batches()):
        if target.ingest(batch).observed:
            return index
    raise AssertionError("the burst sample raised no alert")


def test_batch_key_is_stable_for_a_redelivery_and_absent_without_event_hub_coordinates() -> None:
    first, second = batches()[:2]
    assert batch_key(first) == batch_key(list(first)) and batch_key(first) != batch_key(second)
    assert batch_key([Message(b"{}")]) is None
    moved = [
        Message(m.body, Origin("eventhub", partition="1", sequence_number=m.origin.sequence_number)) for m in first
    ]
    assert batch_key(moved) != batch_key(first)


def test_a_rerun_still_counts_after_another_batch_wrote_the_signin_in_between() -> None:
    """Requests of one sign-in reach other partitions: another batch may update it before the retry comes."""
    from shared.storage.signin_rows import Stored, plan
    from shared.synth.records import body, record

    def judged(rec: dict) -> list:
        from shared.core.record import read_message
        from shared.core.request import judge

        return [judge(a, 0.0) for a in read_message(Message(body([rec]))).accepted]

    first = judged(record(request_id="r1", correlation_id="c", status="unbound", code=1008))
    other = judged(record(request_id="r2", correlation_id="c", status="bound"))
    written = plan("b00", "c", None, first, 100.0, batch="B")
    assert written.update.created and written.update.became_unbound
    after_b = written.after
    assert after_b is not None
    after_b.etag = "1"
    by_c = plan("b00", "c", after_b, other, 200.0, batch="C").after
    assert isinstance(by_c, Stored)
    by_c.etag = "2"
    again = plan("b00", "c", by_c, first, 300.0, batch="B")
    assert again.ops == []
    assert again.update.created and again.update.became_unbound  # told again, so the rerun counts it


def test_a_signin_past_its_request_limit_keeps_a_row_and_a_right_verdict() -> None:
    """Finding 3 of issue 13: thousands of requests under one correlation ID used to be dropped whole."""
    from shared.core.record import read_message
    from shared.core.request import judge
    from shared.core.signin import MAX_REQUESTS
    from shared.storage.signin_rows import plan
    from shared.synth.records import body, record

    huge = [record(correlation_id="giant", status="bound") for _ in range(MAX_REQUESTS + 3000)]
    huge[-10] = record(correlation_id="giant", status="unbound", code=1005)  # past the limit
    requests = [judge(a, 0.0) for a in read_message(Message(body(huge))).accepted]
    planned = plan("b00", "giant", None, requests, 100.0)
    assert planned.ops and planned.update.changed and planned.update.became_unbound
    signin = planned.update.signin
    assert len(signin.requests) == MAX_REQUESTS
    assert signin.verdict == "unbound" and signin.status_codes == [1005]
    assert len(planned.update.over_limit) == 3000
