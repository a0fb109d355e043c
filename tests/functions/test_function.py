"""The Azure Functions entry points called directly, with a real Azurite as the app's storage account."""

from __future__ import annotations

import base64
import inspect
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import azure.functions as func
import orjson
import pytest
from azure.data.tables import TableServiceClient, UpdateMode
from azure.storage.blob import BlobServiceClient

from shared.app.service import IngestService
from shared.core.clock import FixedClock
from shared.functions.ingest import handle_events, ingest_signins, last_try
from shared.functions.timers import expire_signins, settle_signins
from shared.functions.worker import WORKER
from shared.ingest.deadletter import read_dead_letter_line
from shared.ingest.pipeline import NEWER_ROW, Outcome, Pipeline
from shared.settings import current_settings
from shared.storage.deadletter_blob import BlobDeadLetter
from shared.storage.signin_rows import bucket_of, signin_row
from shared.storage.signin_table import TableStore
from shared.synth.records import body, record
from tests.support.state import Counter, table_store

NOW = datetime.now(UTC).replace(microsecond=0)
ingest = ingest_signins.build().get_user_function()
settle = settle_signins.build().get_user_function()
expire = expire_signins.build().get_user_function()


def ingest_outcome(events: list[func.EventHubEvent]) -> Outcome:
    """The function's own path (`ingest_signins` calls it), returning what the invocation judged."""
    return handle_events(events, None)


@dataclass
class Retry:
    retry_count: int
    max_retry_count: int


@dataclass
class Context:
    """The part of func.Context the function reads."""

    retry_context: Retry


def event(payload: bytes, sequence: int, partition: str = "3") -> func.EventHubEvent:
    context = func.meta.Datum(json.dumps({"PartitionId": partition}), "json")
    return func.EventHubEvent(
        body=payload,
        trigger_metadata={"PartitionContext": context},
        sequence_number=sequence,
        offset=str(sequence * 1000),
        enqueued_time=NOW,
    )


@pytest.fixture
def app_storage(storage_connection: str, table_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The function app's settings point at Azurite, as AzureWebJobsStorage does in development."""
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection)
    monkeypatch.setenv("STATE_TABLE_PREFIX", table_prefix)
    monkeypatch.setenv("REJECTED_CONTAINER", table_prefix)
    monkeypatch.setenv("RETENTION_DAYS", "0.5")
    current_settings.cache_clear()
    WORKER.reset()
    yield table_prefix
    WORKER.reset()
    current_settings.cache_clear()


def blobs(connection: str, container: str) -> dict[str, bytes]:
    client = BlobServiceClient.from_connection_string(connection).get_container_client(container)
    if not client.exists():
        return {}
    return {blob.name: client.download_blob(blob.name).readall() for blob in client.list_blobs()}


def test_the_function_keeps_state_in_tables_and_rejections_in_blobs(app_storage: str, storage_connection: str) -> None:
    at = NOW - timedelta(minutes=30)
    good = body(
        [
            record(correlation_id="c1", request_id="r1", at=at),
            record(correlation_id="c2", at=at, status="unbound", code=1003),
        ]
    )
    broken = b'{"records": [42]} trailing'
    events = [event(good, 7), event(broken, 8)]
    ingest(events)
    store = table_store(storage_connection, app_storage)
    assert sorted(s.correlation_id for s in store.signins()) == ["c1", "c2"]
    assert store.get("c2").verdict == "unbound"
    ((name, content),) = blobs(storage_connection, app_storage).items()
    (line,) = [orjson.loads(x) for x in content.splitlines()]
    assert line["reason"] == "message is not JSON"
    assert (line["partition"], line["offset"], line["sequence_number"]) == ("3", "8000", 8)
    assert base64.b64decode(line["raw_base64"]) == broken
    assert name.startswith(f"{at:%Y/%m/%d}/p3/8-") or name.startswith(f"{NOW:%Y/%m/%d}/p3/8-")

    before = {e["RowKey"]: e.metadata["etag"] for e in store.table.list_entities()}
    WORKER.reset()  # another instance gets the same events again (at-least-once)
    ingest(events)
    after = {e["RowKey"]: e.metadata["etag"] for e in store.table.list_entities() if e["PartitionKey"] != "meta"}
    assert after == {k: v for k, v in before.items() if k in after}  # no sign-in row rewritten
    assert len(blobs(storage_connection, app_storage)) == 1  # the same rejection blob, overwritten


def test_a_sign_in_a_newer_release_stored_is_set_aside_not_misread(app_storage: str, storage_connection: str) -> None:
    """During an upgrade (or after a rollback) the older release meets rows of a newer schema: the batch goes on,
    that sign-in's row stays as the newer release wrote it, and its request waits in the dead letters."""
    at = NOW - timedelta(minutes=30)
    ingest([event(body([record(correlation_id="newer", request_id="n1", at=at)]), 1)])
    store = table_store(storage_connection, app_storage)
    newer_row = {"PartitionKey": bucket_of("newer"), "RowKey": signin_row("newer"), "schema": 2}
    store.table.update_entity(newer_row, mode=UpdateMode.MERGE)  # as the next release would mark it
    etag = store.table.get_entity(bucket_of("newer"), signin_row("newer")).metadata["etag"]
    late = record(correlation_id="newer", request_id="n2", at=at, status="unbound", code=1008)
    outcome = ingest_outcome([event(body([late, record(correlation_id="fresh", at=at)]), 2)])
    assert outcome.tally.set_aside == 1 and outcome.tally.signins == 1
    assert store.get("fresh") is not None
    assert store.table.get_entity(bucket_of("newer"), signin_row("newer")).metadata["etag"] == etag
    ((_, content),) = blobs(storage_connection, app_storage).items()
    (line,) = [orjson.loads(x) for x in content.splitlines()]
    kept = read_dead_letter_line(line)
    assert kept.reason == NEWER_ROW and orjson.loads(kept.raw)["properties"]["id"] == "n2"
    assert line["schema"] == 1 and (kept.origin.partition, kept.origin.sequence_number) == ("3", 2)


def test_the_timers_settle_and_then_expire(app_storage: str, storage_connection: str) -> None:
    at = NOW - timedelta(hours=2)
    ingest([event(body([record(correlation_id="old", at=at, status="unbound", code=1002)]), 1)])
    store = table_store(storage_connection, app_storage)
    assert store.get("old").finals == 0
    WORKER.ingest().pipeline.wall = FixedClock(NOW.timestamp() + 3600)  # the stream goes quiet for an hour
    settle(None)
    assert store.get("old").finals == 1
    expire(None)  # RETENTION_DAYS=0.5: two hours old is kept
    assert store.get("old") is not None
    assert WORKER.ingest().expire(NOW.timestamp() + 86400) == 1
    assert store.get("old") is None


def test_a_failing_store_raises_for_a_retry_and_dead_letters_on_the_last(
    app_storage: str, storage_connection: str
) -> None:
    table_store(storage_connection, app_storage)  # the table exists; then every request to it fails
    service = TableServiceClient.from_connection_string(
        storage_connection, transport=Counter(fail_on=lambda m, u: True)
    )
    failing = TableStore(service, prefix=app_storage)
    container = BlobServiceClient.from_connection_string(storage_connection).get_container_client(app_storage)
    WORKER.use(IngestService(Pipeline(failing, 600.0), BlobDeadLetter(container)))
    events = [event(body([record(correlation_id="lost?")]), 40), event(body([record()]), 41)]
    with pytest.raises(ConnectionAbortedError):
        ingest(events, Context(Retry(retry_count=2, max_retry_count=5)))
    assert blobs(storage_connection, app_storage) == {}
    ingest(events, Context(Retry(retry_count=5, max_retry_count=5)))  # the last try: no exception
    (content,) = blobs(storage_connection, app_storage).values()
    lines = [orjson.loads(x) for x in content.splitlines()]
    assert [line["sequence_number"] for line in lines] == [40, 41]
    assert all(line["reason"] == "not processed after the last retry: ConnectionAbortedError" for line in lines)
    assert [base64.b64decode(line["raw_base64"]) for line in lines] == [e.get_body() for e in events]


def test_retry_forever_never_gives_up() -> None:
    assert not last_try(Context(Retry(retry_count=1000, max_retry_count=-1)))
    assert not last_try(None)
    assert last_try(Context(Retry(retry_count=5, max_retry_count=5)))


def test_the_context_parameter_loads_in_the_python_worker() -> None:
    """The worker requires `context` to be annotated with a class named Context, not a union or a string."""
    annotation = inspect.signature(ingest_signins.build().get_user_function()).parameters["context"]
    assert isinstance(annotation.annotation, type) and annotation.annotation.__name__ == "Context"
