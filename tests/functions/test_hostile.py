"""Hostile records through the function as the host calls it, on Azurite (issue 13, findings 2 and 7).

Every invocation must return (no record can fail the batch), and every record must be accounted for as judged,
skipped or rejected: the `batch` log line's counts add up to what was sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.functions.ingest import ingest_signins
from shared.functions.worker import WORKER
from shared.settings import current_settings
from shared.synth.records import record
from tests.functions.test_function import event

ingest = ingest_signins.build().get_user_function()

FIELDS = ["userPrincipalName", "appDisplayName", "resourceDisplayName", "correlationId", "id", "clientAppUsed"]


@st.composite
def hostile_record(draw: st.DrawFn) -> bytes:
    """A record (as the JSON bytes Entra would send) with one hostile change."""
    cid = draw(st.sampled_from(["shared-cid", "a", "b"]))
    base = record(correlation_id=cid, request_id=str(draw(st.uuids())))
    props = base["properties"]
    kind = draw(st.sampled_from(["surrogate", "huge", "emoji", "deep", "bigint", "odd_keys", "types", "plain"]))
    field = draw(st.sampled_from(FIELDS))
    if kind == "surrogate":
        props[field] = "x\ud800y" + draw(st.text(max_size=5))
    elif kind == "huge":
        props[field] = "u" * draw(st.integers(30_000, 70_000))
    elif kind == "emoji":
        props[field] = "😀" * draw(st.integers(10_000, 20_000))
    elif kind == "odd_keys":
        props[draw(st.text(max_size=30))] = draw(st.text(max_size=30))
        base[draw(st.sampled_from(["PartitionKey", "", "\u0000", "records"]))] = {"x": 1}
    elif kind == "types":
        props[field] = draw(st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=3), st.booleans()))
    raw = json.dumps(base).encode()  # the standard library writes lone surrogates as JSON escapes, as Entra could
    if kind == "deep":
        depth = draw(st.integers(1_100, 6_000))
        raw = raw[:-1] + b',"junk":' + b"[" * depth + b"]" * depth + b"}"
    elif kind == "bigint":
        digits = draw(st.integers(20, 5_000))
        raw = raw.replace(b'"signInSessionStatus": "bound"', b'"signInSessionStatusCode": ' + b"7" * digits, 1)
    return raw


@pytest.fixture
def app_storage(storage_connection: str, table_prefix: str) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AzureWebJobsStorage", storage_connection)
        patch.setenv("STATE_TABLE_PREFIX", table_prefix)
        patch.setenv("REJECTED_CONTAINER", table_prefix)
        current_settings.cache_clear()
        WORKER.reset()
        yield table_prefix
        WORKER.reset()
        current_settings.cache_clear()


def counted(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    lines = [orjson.loads(r.getMessage().removeprefix("BINDWATCH ")) for r in caplog.records if r.name == "bindwatch"]
    batches = [line for line in lines if line["event"] == "batch"]
    return {key: sum(b[key] for b in batches) for key in ("records", "skipped", "rejected")}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(st.lists(st.lists(hostile_record(), min_size=1, max_size=4), min_size=1, max_size=3))
def test_no_hostile_record_fails_an_invocation_and_every_one_is_counted(
    app_storage: str, caplog: pytest.LogCaptureFixture, messages: list[list[bytes]]
) -> None:
    caplog.clear()
    caplog.set_level(logging.INFO, logger="bindwatch")
    events = [event(b'{"records":[' + b",".join(records) + b"]}", 1000 + i) for i, records in enumerate(messages)]
    ingest(events)  # must not raise
    counts = counted(caplog)
    assert counts["records"] + counts["skipped"] + counts["rejected"] == sum(len(m) for m in messages)
