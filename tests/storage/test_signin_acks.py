"""Acknowledged report rows are deleted in transactions, and an acknowledgement can never wedge the store.

Found by `make bench-scale` (issue 15): a sign-in reported, reopened by a late request and reported again before
the first acknowledgement was flushed put its report row twice in one delete transaction. The service refuses
that (400, "RowKey ... is already present in the batch"), which is not a conflict; the pending deletes were kept,
so every later batch of that instance failed the same way.
"""

from __future__ import annotations

from shared.core.message import Message
from shared.core.record import read_message
from shared.core.request import Request, judge
from shared.storage.signin_rows import bucket_of, report_row
from shared.storage.signin_table import TableStore
from shared.synth.records import BASE_TIME, body, record
from tests.support.state import Counter, table_store

T0 = BASE_TIME.timestamp()


def requests_of(*records: dict) -> list[Request]:
    reading = read_message(Message(body(list(records))))
    return [judge(accepted, T0) for accepted in reading.accepted]


def report_rows(store: TableStore) -> list[str]:
    return [e["RowKey"] for e in store.table.list_entities() if e["RowKey"].startswith("r|")]


def reported_twice(store: TableStore) -> None:
    """Sign-in `x` reported, reopened by a late request, reported again: two acknowledgements of one report row."""
    store.merge(requests_of(record(correlation_id="x", request_id="a")), T0)
    (first,) = store.settle(float("inf"))
    store.acknowledge([first])  # waits to share a transaction with others of its bucket
    (update,) = store.merge(requests_of(record(correlation_id="x", request_id="b", status="unbound")), T0 + 60)
    assert update.reopened
    (second,) = store.settle(float("inf"))
    assert second.correlation_id == "x" and second.finals == 2
    store.acknowledge([second])


def test_a_signin_acknowledged_twice_is_deleted_in_one_valid_transaction(
    storage_connection: str, table_prefix: str
) -> None:
    store = table_store(storage_connection, table_prefix)
    reported_twice(store)
    assert report_rows(store) == [report_row("x")]
    store.acknowledge([], flush=True)  # was: 400 InvalidDuplicateRow, raised, and kept for the next batch
    assert report_rows(store) == []
    store.merge(requests_of(record(correlation_id="y", request_id="c")), T0 + 120)
    settled = store.settle(float("inf"))
    assert [s.correlation_id for s in settled] == ["y"]  # the next batch settles as usual
    store.acknowledge(settled, flush=True)
    assert report_rows(store) == []


def test_acknowledged_rows_already_gone_are_fine(storage_connection: str, table_prefix: str) -> None:
    store = table_store(storage_connection, table_prefix)
    for name in ("p", "q", "s"):
        store.merge(requests_of(record(correlation_id=name, request_id=name)), T0)
    finals = store.settle(float("inf"))
    assert len(finals) == 3
    gone = finals[0].correlation_id  # another instance adopted and reported it, and deleted its report row
    store.table.delete_entity(bucket_of(gone), report_row(gone))
    store.acknowledge(finals, flush=True)
    assert report_rows(store) == []
    assert store.settle(float("inf")) == []


def test_a_failed_ack_flush_does_not_fail_this_or_any_later_batch(storage_connection: str, table_prefix: str) -> None:
    cut = {"on": False}

    def fail_deletes(method: str, url: str) -> bool:
        return cut["on"] and method == "POST" and url.endswith("$batch")

    counter = Counter(fail_on=fail_deletes)
    store = table_store(storage_connection, table_prefix, counter)
    store.merge(requests_of(record(correlation_id="x", request_id="a")), T0)
    finals = store.settle(float("inf"))
    cut["on"] = True  # the storage account cannot be reached while the acknowledgement is flushed
    store.acknowledge(finals, flush=True)  # does not raise: the report row stays, to be deleted later
    cut["on"] = False
    assert report_rows(store) == [report_row("x")]
    store.merge(requests_of(record(correlation_id="y", request_id="c")), T0 + 120)
    settled = store.settle(float("inf"))
    assert [s.correlation_id for s in settled] == ["y"]
    store.acknowledge(settled, flush=True)  # the one that failed goes with this flush
    assert report_rows(store) == []
    assert store.settle(float("inf"), orphan_age=0.0) == []  # nothing left to report again
