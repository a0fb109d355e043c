"""Whatever is declared final is reported exactly once, even across a storage fault (issue 13, finding 6).

A connection cut during settling used to leave sign-ins final in the store but never reported, and a rerun did
not report them either. The transport here cuts the connection after the service committed a claim, the worst
case: the claim happened, and the settler never learned of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from shared.ingest.pipeline import Pipeline
from shared.storage.signin_table import TableStore
from tests.support.state import Counter, stream


class CutAfter(Counter):
    """Sends the request, then drops the answer on the chosen requests: the server did it, the client never knew."""

    def __init__(self, cut: Callable[[int, str, str], bool]) -> None:
        super().__init__()
        self.cut = cut

    def send(self, request: Any, **kwargs: Any) -> Any:
        answer = super().send(request, **kwargs)
        if self.cut(len(self.requests), request.method, request.url):
            raise ConnectionAbortedError("injected cut after the service answered")
        return answer


def store(connection: str, prefix: str, transport: Counter | None = None) -> TableStore:
    options = {"transport": transport} if transport else {}
    return TableStore(TableServiceClient.from_connection_string(connection, **options), prefix=prefix).ensure()


def test_a_cut_during_settling_loses_no_final_report(storage_connection: str, table_prefix: str) -> None:
    messages = stream(200)
    loader = Pipeline(store(storage_connection, table_prefix), 600.0)
    for start in range(0, len(messages), 4):
        loader.ingest(messages[start : start + 4])
    open_ids = {s.correlation_id for s in loader.store.signins() if s.finals == 0}
    assert len(open_ids) > 20

    batches = 0

    def third_claim(_count: int, method: str, url: str) -> bool:
        nonlocal batches
        if method == "POST" and "$batch" in url:
            batches += 1
            return batches == 3
        return False

    first = Pipeline(store(storage_connection, table_prefix, CutAfter(third_claim)), 600.0)
    with pytest.raises(ConnectionAbortedError):
        first.drain()  # the replay ends with an error; it printed nothing
    second = Pipeline(store(storage_connection, table_prefix), 600.0)
    reported = [s.correlation_id for s in second.drain().finals]
    assert sorted(reported) == sorted(open_ids)  # every one, once
    third = Pipeline(store(storage_connection, table_prefix), 600.0)
    assert third.drain().finals == []  # and never again
