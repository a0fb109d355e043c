"""The sign-in table's bucket count (STATE_SIGNIN_BUCKETS) on Azurite: recorded with the table, never changed in
place, and any count gives the clean answer."""

from __future__ import annotations

from collections import Counter as Counter_
from urllib.parse import unquote

import pytest
from azure.data.tables import TableServiceClient

from shared.app import compose
from shared.settings import ConfigurationError, Settings, load_settings
from shared.storage.signin_rows import BUCKETS_ROW, META, bucket_of, signin_row
from shared.storage.signin_table import TableStore
from tests.support.state import Counter, clean, drive, stream, verdicts


def store(connection: str, prefix: str, buckets: int, counter: Counter | None = None) -> TableStore:
    options = {"transport": counter} if counter else {}
    service = TableServiceClient.from_connection_string(connection, **options)
    return TableStore(service, prefix=prefix, buckets=buckets).ensure()


def test_a_new_table_records_its_count_and_refuses_another(storage_connection: str, table_prefix: str) -> None:
    first = store(storage_connection, table_prefix, 16)
    assert first.table.get_entity(META, BUCKETS_ROW)["buckets"] == 16
    store(storage_connection, table_prefix, 16)  # the same count starts
    with pytest.raises(ConfigurationError) as refused:
        store(storage_connection, table_prefix, 8)
    message = str(refused.value)
    assert "setting STATE_SIGNIN_BUCKETS: 8" in message and "created with 16 buckets" in message
    assert f"{table_prefix}signins" in message and "STATE_TABLE_PREFIX" in message


def test_a_table_from_before_the_count_was_recorded_has_eight(storage_connection: str, table_prefix: str) -> None:
    old = store(storage_connection, table_prefix, 8)
    drive(old, stream(20), drain=False)
    old.table.delete_entity(META, BUCKETS_ROW)  # as a table made by a release that did not record it
    with pytest.raises(ConfigurationError, match="created with 8 buckets"):
        store(storage_connection, table_prefix, 32)
    assert old.table.get_entity(META, BUCKETS_ROW)["buckets"] == 8  # recorded on the way
    store(storage_connection, table_prefix, 8)


def test_an_empty_table_takes_the_first_openers_count(storage_connection: str, table_prefix: str) -> None:
    TableServiceClient.from_connection_string(storage_connection).create_table(f"{table_prefix}signins")
    assert store(storage_connection, table_prefix, 24).buckets == 24
    with pytest.raises(ConfigurationError):
        store(storage_connection, table_prefix, 8)


def test_the_setting_reaches_the_store_and_stops_the_start(storage_connection: str, table_prefix: str) -> None:
    def settings(buckets: str) -> Settings:
        return load_settings(
            STATE_STORAGE_CONNECTION=storage_connection, STATE_TABLE_PREFIX=table_prefix, STATE_SIGNIN_BUCKETS=buckets
        )

    assert compose.signin_table(settings("12")).buckets == 12
    with pytest.raises(ConfigurationError, match="setting STATE_SIGNIN_BUCKETS: 9"):
        compose.signin_table(settings("9"))


def test_a_table_of_another_count_stops_the_worker_start(
    storage_connection: str, table_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked when the worker loads the app, not at the first batch (which would fail, retry and be skipped)."""
    from shared.functions import start
    from shared.settings import current_settings

    store(storage_connection, table_prefix, 16)
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection)
    monkeypatch.setenv("STATE_TABLE_PREFIX", table_prefix)
    monkeypatch.setenv("STATE_SIGNIN_BUCKETS", "8")
    current_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match="setting STATE_SIGNIN_BUCKETS: 8"):
            start()
        monkeypatch.setenv("STATE_SIGNIN_BUCKETS", "16")
        current_settings.cache_clear()
        start()
        monkeypatch.setenv(
            "AzureWebJobsStorage",
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            "AccountKey=Zm9v;TableEndpoint=http://127.0.0.1:9/devstoreaccount1;",
        )
        current_settings.cache_clear()
        start()  # storage not reachable now: left to the first invocation, which retries
    finally:
        current_settings.cache_clear()


def test_any_count_gives_the_clean_answer_and_spreads_the_rows(storage_connection: str, table_prefix: str) -> None:
    messages = stream(150, seed=13)
    expected, flags = clean(messages)
    counter = Counter()
    wide = store(storage_connection, table_prefix, 20, counter)
    got = drive(wide, messages, drain=False)
    counter.requests.clear()
    wide.acknowledge(wide.settle(float("inf")), flush=True)
    queries = [unquote(url) for method, url in counter.requests if method == "GET"]
    assert len(queries) == 20 and all("PartitionKey eq 'b" in query for query in queries)
    assert verdicts(wide) == expected and got.created == flags.created == 150
    partitions = Counter_(e["PartitionKey"] for e in wide.table.list_entities() if e["PartitionKey"] != META)
    assert set(partitions) == {f"b{n:02d}" for n in range(20)}
    assert all(wide.table.get_entity(bucket_of(cid, 20), signin_row(cid)) for cid in expected)


def test_a_count_out_of_range_is_refused_before_any_request(storage_connection: str, table_prefix: str) -> None:
    service = TableServiceClient.from_connection_string(storage_connection)
    for bad in (0, 101):
        with pytest.raises(ValueError, match="1 to 100 buckets"):
            TableStore(service, prefix=table_prefix, buckets=bad)
