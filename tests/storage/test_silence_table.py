"""Run-time silences in Table Storage (a real Azurite): kept, expired by two people at once, refused when newer."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.data.tables import TableServiceClient

from shared.core.schema import SCHEMA
from shared.detect.silence import new_silence
from shared.storage.silence_table import RETENTION_SECONDS, SILENCES, TableSilences, to_entity

NOW = 1_800_000_000.0


def silences(connection: str, prefix: str) -> TableSilences:
    return TableSilences(TableServiceClient.from_connection_string(connection), prefix)


def test_a_silence_reads_back_as_written_and_expires_once(storage_connection: str, table_prefix: str) -> None:
    store = silences(storage_connection, table_prefix)
    made = new_silence({"app": ("Microsoft Teams", "Outlook"), "enforcement": ("report_only",)}, NOW, "2h", "a", "r")
    store.add(made)
    assert silences(storage_connection, table_prefix).silences() == [made]
    with ThreadPoolExecutor(2) as pool:  # two on-call engineers expire it at the same moment
        done = list(pool.map(lambda who: store.expire(made.id, NOW + 60, who), ["x", "y"]))
    assert all(d is not None and d.ends_at == NOW + 60 for d in done)
    (kept,) = store.silences()
    assert kept.ends_at == NOW + 60 and kept.expired_by in {"x", "y"} and kept.match == made.match
    assert store.expire("0123456789ab", NOW, "x") is None


def test_ended_silences_are_kept_thirty_days(storage_connection: str, table_prefix: str) -> None:
    store = silences(storage_connection, table_prefix)
    old, recent = (new_silence({"app": ("x",)}, at, "1h", "a", "r") for at in (NOW - RETENTION_SECONDS - 7200, NOW))
    store.add(old)
    store.add(recent)
    assert store.forget_ended(NOW) == 1
    assert [s.id for s in store.silences()] == [recent.id]


def test_a_silence_of_a_newer_release_is_refused_and_logged(
    storage_connection: str, table_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = silences(storage_connection, table_prefix)
    newer = new_silence({"app": ("x",)}, NOW, "1h", "a", "r")
    store.table.create_entity({**to_entity(newer), SCHEMA: SILENCES.version + 1})
    store.add(known := new_silence({"app": ("y",)}, NOW, "1h", "a", "r"))
    with caplog.at_level(logging.WARNING, logger="bindwatch"):
        assert store.silences() == [known]
    assert "schema_refused" in caplog.text and "not honoured by this release" in caplog.text
