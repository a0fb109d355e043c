"""Detection state stays bounded through the function (Azurite): 100,000 groups in a day, 10,000 in one minute.

Issue 13, finding 1: before, one rule's memory and each minute's window counts lived in one table row, so a
few thousand distinct apps made every batch raise `too large for one entity` on every retry. Now rows are
sharded by group hash, capped, and pruned; what does not fit degrades (detail dropped, counted, logged once).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.data.tables import TableServiceClient

from shared.functions.ingest import ingest_signins
from shared.functions.worker import WORKER
from shared.settings import current_settings
from shared.synth.records import body, policy

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
APPS_PER_SIGNIN = 20  # a sign-in keeps up to 20 apps: each request names another one
ingest = ingest_signins.build().get_user_function()


@pytest.fixture
def app_storage(storage_connection: str, table_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection)
    monkeypatch.setenv("STATE_TABLE_PREFIX", table_prefix)
    monkeypatch.setenv("REJECTED_CONTAINER", table_prefix)
    current_settings.cache_clear()
    WORKER.reset()
    yield table_prefix
    WORKER.reset()
    current_settings.cache_clear()


def event(payload: bytes, sequence: int) -> func.EventHubEvent:
    context = func.meta.Datum(json.dumps({"PartitionId": "0"}), "json")
    return func.EventHubEvent(
        body=payload,
        trigger_metadata={"PartitionContext": context},
        sequence_number=sequence,
        offset=str(sequence),
        enqueued_time=NOW,
    )


def signins(first_app: int, apps: int, at: datetime, tag: str) -> list[dict[str, Any]]:
    """Sign-ins of 20 requests each, every request from another app; every third sign-in unbound. Records hold
    only what bindwatch reads (the rest of a real record is skipped unread anyway)."""
    records = []
    for index in range(apps // APPS_PER_SIGNIN):
        unbound = index % 3 == 0
        enforced = index % 2 == 0
        result = ("failure" if enforced else "reportOnlyFailure") if unbound else "success"
        tp = policy(result=result, not_satisfied=["SignInTokenProtection"] if unbound else [])
        details = {"signInSessionStatus": "unbound", "signInSessionStatusCode": 1008} if unbound else {}
        created = (at + timedelta(seconds=index % 50)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for offset in range(APPS_PER_SIGNIN):
            properties = {
                "id": f"{tag}-{index}-{offset}",
                "correlationId": f"{tag}-{index}",
                "createdDateTime": created,
                "userPrincipalName": f"user{index % 997}@contoso.com",
                "appDisplayName": f"App {first_app + index * APPS_PER_SIGNIN + offset:06d}",
                "clientAppUsed": "Mobile Apps and Desktop clients",
                "deviceDetail": {"operatingSystem": "Windows10"},
                "tokenProtectionStatusDetails": details or {"signInSessionStatus": "bound"},
                "appliedConditionalAccessPolicies": [tp],
            }
            records.append({"category": "NonInteractiveUserSignInLogs", "properties": properties})
    return records


def invoke(records: list[dict[str, Any]], sequence: int) -> int:
    """One invocation of 500-record messages; returns the next sequence number."""
    events = []
    for start in range(0, len(records), 500):
        events.append(event(body(records[start : start + 500]), sequence))
        sequence += 1
    ingest(events)  # raises if anything fails: that is what this test is about
    return sequence


def detection_rows(connection: str, prefix: str) -> list[dict[str, Any]]:
    table = TableServiceClient.from_connection_string(connection).get_table_client(f"{prefix}detect")
    return list(table.list_entities())


def row_chars(entity: dict[str, Any]) -> int:
    return sum(len(v) for v in entity.values() if isinstance(v, str))


def test_a_hundred_thousand_groups_a_day_and_ten_thousand_in_a_minute_never_fail_a_batch(
    app_storage: str, storage_connection: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bindwatch")
    start = NOW - timedelta(days=1)
    sequence = 0
    # 100,000 distinct apps over a day: 20 invocations of 5,000 new apps, an hour or so apart.
    for step in range(20):
        at = start + timedelta(minutes=70 * step)
        sequence = invoke(signins(step * 5_000, 5_000, at, f"day{step}"), sequence)
    # Then 10,000 distinct apps in one minute.
    sequence = invoke(signins(100_000, 10_000, NOW - timedelta(minutes=5), "minute"), sequence)
    rows = detection_rows(storage_connection, app_storage)
    assert rows
    # Every row is within what one entity holds (1 MiB; strings count two bytes a character) with room to spare.
    assert max(row_chars(row) for row in rows) * 2 < 900_000
    events = [json.loads(r.getMessage().removeprefix("BINDWATCH ")) for r in caplog.records]
    degraded = [e for e in events if e.get("event") == "detection_degraded"]
    assert degraded, "what did not fit must be logged"
    assert len(degraded) == len({e["what"] for e in degraded})  # once for each kind of loss
    assert not [e for e in events if e.get("event") == "batch_failed"]
