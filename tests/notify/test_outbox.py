"""The outbox contract, held by the in-memory store and by Table Storage on a real Azurite."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from azure.data.tables import TableServiceClient

from shared.core.alert import Notification
from shared.notify.breaker import BreakerState
from shared.notify.outbox import Entry, MemoryOutbox, Outbox
from shared.storage.outbox_table import TableOutbox
from shared.synth.alerts import sample


@pytest.fixture(params=["memory", "table"])
def outbox(request: pytest.FixtureRequest) -> Iterator[Outbox]:
    if request.param == "memory":
        yield MemoryOutbox()
        return
    service = TableServiceClient.from_connection_string(request.getfixturevalue("storage_connection"))
    yield TableOutbox(service, request.getfixturevalue("table_prefix"))


def entry(receiver: str = "teams", at: float = 100.0, created: float = 1_000.0) -> Entry:
    notification = Notification(receiver, [sample("spike", at=at)], at)
    return Entry(receiver, notification, created=created, next_at=created, updated=created)


def test_add_writes_once_and_never_overwrites(outbox: Outbox) -> None:
    first = entry()
    assert outbox.add(first)
    assert first.etag
    delivered = replace(first, state="delivered")
    assert not outbox.add(replace(delivered, etag=None))
    stored = outbox.get("teams", first.id)
    assert stored is not None and stored.state == "pending"
    assert stored.notification.to_dict() == first.notification.to_dict()
    assert stored.id == first.id


def test_due_is_pending_past_due_and_unleased_oldest_first(outbox: Outbox) -> None:
    early, late, future = entry(at=1.0, created=10.0), entry(at=2.0, created=20.0), entry(at=3.0, created=5_000.0)
    for item in (late, early, future):
        outbox.add(item)
    assert [e.id for e in outbox.due(100.0)] == [early.id, late.id]
    claimed = outbox.claim(outbox.due(100.0)[0], until=200.0)
    assert claimed is not None
    assert [e.id for e in outbox.due(100.0)] == [late.id]  # held by a sender
    assert {e.id for e in outbox.due(300.0)} == {early.id, late.id}  # the lease ran out


def test_only_one_claim_wins(outbox: Outbox) -> None:
    outbox.add(entry())
    (seen_by_a,) = outbox.due(2_000.0)
    (seen_by_b,) = outbox.due(2_000.0)
    assert outbox.claim(seen_by_a, 2_100.0) is not None
    assert outbox.claim(seen_by_b, 2_100.0) is None


def test_save_needs_the_latest_version(outbox: Outbox) -> None:
    outbox.add(entry())
    (found,) = outbox.due(2_000.0)
    claimed = outbox.claim(found, 2_100.0)
    assert claimed is not None
    claimed.done.append("message")
    assert outbox.save(claimed)
    claimed.state = "delivered"
    assert outbox.save(claimed)  # its etag was refreshed by the first save
    assert not outbox.save(found)  # stale
    stored = outbox.get("teams", claimed.id)
    assert stored is not None and (stored.state, stored.done) == ("delivered", ["message"])
    assert outbox.due(10_000.0) == []


def test_fields_round_trip(outbox: Outbox) -> None:
    item = entry()
    outbox.add(item)
    claimed = outbox.claim(item, 5.0)
    assert claimed is not None
    claimed.attempts, claimed.http_status, claimed.answer, claimed.next_at = 3, 503, "503: busy", 1_234.5
    assert outbox.save(claimed)
    stored = outbox.get("teams", item.id)
    assert stored is not None
    assert (stored.attempts, stored.http_status, stored.answer, stored.next_at, stored.lease_until) == (
        3,
        503,
        "503: busy",
        1_234.5,
        5.0,
    )
    assert [e.id for e in outbox.entries()] == [item.id]


def test_a_large_notification_is_stored_in_chunks(outbox: Outbox) -> None:
    alert = sample("spike")
    alert.examples = [f"{i:032x}-{i * 7919 % 100_003:08d}" for i in range(20_000)]  # ~900 KB of JSON
    item = Entry("webhook", Notification("webhook", [alert], 1.0), created=1.0, next_at=1.0)
    assert outbox.add(item)
    stored = outbox.get("webhook", item.id)
    assert stored is not None and stored.notification.alerts[0].examples == alert.examples


def test_breaker_state_round_trips(outbox: Outbox) -> None:
    assert outbox.load_breaker("teams") == BreakerState()
    outbox.save_breaker("teams", BreakerState(failures=5, open_until=123.5, opened=2))
    assert outbox.load_breaker("teams") == BreakerState(failures=5, open_until=123.5, opened=2)
    assert outbox.load_breaker("webhook") == BreakerState()


def test_two_table_outboxes_over_the_same_tables_see_the_same_entries(
    storage_connection: str, table_prefix: str
) -> None:
    first = TableOutbox(TableServiceClient.from_connection_string(storage_connection), table_prefix)
    second = TableOutbox(TableServiceClient.from_connection_string(storage_connection), table_prefix)
    item = entry()
    first.add(item)
    assert second.get("teams", item.id) is not None
    assert not second.add(replace(item, etag=None))


def test_expire_removes_old_finished_entries_and_keeps_pending_ones(outbox: Outbox) -> None:
    old_done = replace(entry("teams", at=1.0), state="delivered", updated=50.0)
    old_failed = replace(entry("webhook", at=2.0), state="failed", updated=50.0)
    old_pending = replace(entry("pagerduty", at=3.0), updated=50.0)
    recent_done = replace(entry("teams", at=4.0), state="delivered", updated=500.0)
    for item in (old_done, old_failed, old_pending, recent_done):
        assert outbox.add(item)
    assert outbox.expire(100.0) == 2
    left = {(e.destination, e.state) for e in outbox.entries()}
    assert left == {("pagerduty", "pending"), ("teams", "delivered")}
