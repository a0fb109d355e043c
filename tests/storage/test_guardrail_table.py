"""The guardrail's table on a real Azurite: changes kept once, watches opened once, conditional writes, old rows."""

from __future__ import annotations

import argparse
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from azure.data.tables import TableServiceClient

from shared.cli.report import compute
from shared.core.policy_change import PolicyChange
from shared.core.schema import SCHEMA
from shared.detect.prediction import PolicyHours, Prediction
from shared.detect.watch import PREDICTED, Watch
from shared.settings import load_settings
from shared.storage.guardrail_table import GUARDRAIL, TableGuardrail

T0 = 1_773_216_000.0
CHANGE = PolicyChange(
    id="IPCGraph/0001#?",  # characters a RowKey may not hold
    at=T0,
    policy_id="p-1",
    policy="CA-TP01 Require token protection",
    operation="update",
    actor="admin@contoso.com",
    state_before="report_only",
    state_after="on",
    protection_before=True,
    protection_after=True,
)


def store(connection: str, prefix: str) -> TableGuardrail:
    return TableGuardrail(TableServiceClient.from_connection_string(connection), prefix)


def test_a_change_is_kept_once_wherever_it_arrives(storage_connection: str, table_prefix: str) -> None:
    stores = [store(storage_connection, table_prefix) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        kept = list(pool.map(lambda s: s.add_change(CHANGE), stores))
    assert kept.count(True) == 1
    assert stores[0].load(T0 - 1).changes == [CHANGE]
    assert stores[0].load(T0 + 1).changes == []  # only the changes since what a batch asks for


def test_a_watch_is_opened_once_and_written_only_over_what_was_read(storage_connection: str, table_prefix: str) -> None:
    first, second = store(storage_connection, table_prefix), store(storage_connection, table_prefix)
    mine, theirs = (Watch(CHANGE, "ca-tp01", Prediction(24, 100, 5), T0 + 3600) for _ in range(2))
    assert first.save_watch(mine) and not second.save_watch(theirs)  # insert only if absent
    found = second.load_watch(CHANGE.id)
    assert found is not None and found.etag == mine.etag
    mine.apply(("status", PREDICTED, T0 + 3600, ""))
    assert first.save_watch(mine)
    found.apply(("status", "paged", T0 + 60, "app:x"))
    assert not second.save_watch(found)  # read before the other write: refused, re-read and replayed
    stored = second.load_watch(CHANGE.id)
    assert stored is not None and stored.status == PREDICTED


def test_policy_counts_round_trip_and_conflict(storage_connection: str, table_prefix: str) -> None:
    tables = store(storage_connection, table_prefix)
    hours = PolicyHours("ca-tp01", "CA-TP01")
    hours.apply(("count", 10, 1, 3))
    hours.apply(("cause", 10, "app:Outlook", 3))
    assert tables.save_policy(hours)
    stale = PolicyHours.from_data(hours.to_data(), hours.etag)
    hours.apply(("count", 10, 0, 1))
    assert tables.save_policy(hours)
    assert not tables.save_policy(stale)
    assert tables.load(0.0).policies["ca-tp01"].hours == {10: [1, 3, 0]}


def test_ended_watches_are_forgotten_and_newer_rows_refused(
    storage_connection: str, table_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    tables = store(storage_connection, table_prefix)
    old = Watch(replace(CHANGE, id="old"), "ca-tp01", Prediction(0, 0, 0), T0)
    old.apply(("status", PREDICTED, T0, ""))
    live = Watch(replace(CHANGE, id="live"), "ca-tp01", Prediction(0, 0, 0), T0 + 3600)
    assert tables.save_watch(old) and tables.save_watch(live)
    newer = tables._entity("watch", "next", Watch(replace(CHANGE, id="next"), "x", Prediction(0, 0, 0), T0).to_data())
    tables.table.create_entity({**newer, SCHEMA: GUARDRAIL.version + 1})
    with caplog.at_level(logging.WARNING, logger="bindwatch"):
        assert set(tables.load(T0 + 86400).watches) == {"live"}
    assert "schema_refused" in caplog.text
    assert tables.load_watch("old") is None  # deleted once it was older than what a batch loads


def test_the_report_over_the_store_marks_the_kept_changes(
    storage_connection: str, table_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection)
    monkeypatch.setenv("STATE_TABLE_PREFIX", table_prefix)
    store(storage_connection, table_prefix).add_change(CHANGE)
    args = argparse.Namespace(store="table", paths=[], from_storage=None, top=15, limit=200)
    result, _ = compute(args, load_settings())
    assert [(c["policy"], c["actor"]) for c in result["policy_changes"]] == [(CHANGE.policy, CHANGE.actor)]
    assert result["timeline"]["marks"] == [{"at": "2026-03-11T08:00:00.000Z", "label": f"{CHANGE.policy} switched On"}]
