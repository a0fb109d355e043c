"""An invocation's work is bounded inside functionTimeout (issue 13, finding 5), through the function on Azurite.

The budget is spent on purpose here (a clock that jumps a minute per look); nothing is timed.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from itertools import count

import orjson
import pytest
from azure.storage.blob import BlobServiceClient

from shared.app.service import OverBudget
from shared.functions.ingest import ingest_signins
from shared.functions.worker import WORKER
from shared.settings import current_settings
from shared.synth.records import body, record
from tests.functions.test_function import Context, Retry, event
from tests.support.state import table_store

ingest = ingest_signins.build().get_user_function()


@pytest.fixture
def app_storage(storage_connection: str, table_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection)
    monkeypatch.setenv("STATE_TABLE_PREFIX", table_prefix)
    monkeypatch.setenv("REJECTED_CONTAINER", table_prefix)
    monkeypatch.setenv("INVOCATION_BUDGET_SECONDS", "90")
    current_settings.cache_clear()
    WORKER.reset()
    service = WORKER.ingest()
    service.slice_bytes = 1  # every message a slice of its own
    minutes = count()
    service.monotonic = lambda: 60.0 * next(minutes)  # each look at the clock finds a minute gone
    yield table_prefix
    WORKER.reset()
    current_settings.cache_clear()


def events() -> list:  # type: ignore[type-arg]
    return [event(body([record(correlation_id=f"c{i}")]), 100 + i) for i in range(4)]


def test_over_budget_the_host_retries_and_what_was_judged_is_kept(app_storage: str, storage_connection: str) -> None:
    with pytest.raises(OverBudget):
        ingest(events(), Context(Retry(retry_count=0, max_retry_count=5)))
    stored = {s.correlation_id for s in table_store(storage_connection, app_storage).signins()}
    assert stored and stored < {"c0", "c1", "c2", "c3"}  # some slices judged and kept, not all


def test_over_budget_on_the_last_try_the_rest_is_dead_lettered_whole(app_storage: str, storage_connection: str) -> None:
    batch = events()
    ingest(batch, Context(Retry(retry_count=5, max_retry_count=5)))  # no exception on the last try
    stored = {s.correlation_id for s in table_store(storage_connection, app_storage).signins()}
    container = BlobServiceClient.from_connection_string(storage_connection).get_container_client(app_storage)
    lines = [
        orjson.loads(x) for blob in container.list_blobs() for x in container.download_blob(blob).readall().splitlines()
    ]
    dead = {line["sequence_number"] for line in lines}
    assert all("over the 90 s budget" in line["reason"] for line in lines)
    judged = {int(cid[1:]) + 100 for cid in stored}
    assert judged | dead == {100, 101, 102, 103} and not judged & dead  # every message judged or kept, once
    raw = {line["sequence_number"]: base64.b64decode(line["raw_base64"]) for line in lines}
    assert all(raw[n] == batch[n - 100].get_body() for n in dead)
