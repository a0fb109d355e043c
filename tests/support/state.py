"""Helpers for the state tests: realistic streams, a request counter, and the clean replay to compare with."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient

from shared.core.message import Message, Origin
from shared.core.signin import SignIn
from shared.core.verdict import verdict_line
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Batch, Pipeline
from shared.ingest.store import SignInStore
from shared.storage.signin_table import TableStore
from shared.synth.records import BASE_TIME, body
from shared.synth.traffic import Traffic

SETTLE = 600.0


class Counter(RequestsTransport):
    """A transport that counts every HTTP request that goes out (SDK retries too) and keeps its method and URL.

    azure-data-tables 12.7 builds its own policy list and ignores `per_call_policies`, so the count is taken
    where no request can pass unseen: the transport.
    """

    def __init__(self, fail_on: Callable[[str, str], bool] | None = None) -> None:
        super().__init__()
        self.requests: list[tuple[str, str]] = []
        self.fail_on = fail_on
        self._lock = threading.Lock()

    def send(self, request: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.requests.append((request.method, request.url))
        if self.fail_on is not None and self.fail_on(request.method, request.url):
            raise ConnectionAbortedError("injected crash")
        return super().send(request, **kwargs)

    @property
    def count(self) -> int:
        return len(self.requests)


def table_store(connection: str, prefix: str, counter: Counter | None = None) -> TableStore:
    """A store with its own client (as a separate instance of the function would have)."""
    options = {"transport": counter} if counter else {}
    return TableStore(TableServiceClient.from_connection_string(connection, **options), prefix=prefix).ensure()


def stream(signins: int, seed: int = 7, per_body: int = 80, fillers: int = 5) -> list[Message]:
    """Sign-ins starting every 2 s, records in event-time order (with jitter), ~80 records per body."""
    traffic = Traffic(seed=seed, fillers=fillers)
    rng = random.Random(seed)
    records: list[tuple[float, dict[str, Any]]] = []
    for index in range(signins):
        for item in traffic.signin(BASE_TIME + timedelta(seconds=2 * index)):
            records.append((item["properties"]["createdDateTime"] + str(rng.random()), item))
    records.sort(key=lambda pair: pair[0])
    ordered = [item for _, item in records]
    return [
        Message(body(ordered[i : i + per_body]), Origin(source="test", partition="0", sequence_number=i))
        for i in range(0, len(ordered), per_body)
    ]


def redelivered(messages: Sequence[Message], seed: int = 3) -> list[Message]:
    """Every message twice, the whole stream shuffled: at-least-once delivery across partitions."""
    doubled = list(messages) * 2
    random.Random(seed).shuffle(doubled)
    return doubled


class Flags:
    """An observer that counts what detection counts: sign-ins created and turned unbound, from the updates."""

    def __init__(self) -> None:
        self.created = 0
        self.became_unbound = 0
        self.finals: dict[str, dict[str, Any]] = {}  # the last final verdict of each sign-in

    def observe(self, batch: Batch) -> list[dict[str, Any]]:
        self.created += sum(u.created for u in batch.updates)
        self.became_unbound += sum(u.became_unbound for u in batch.updates)
        for signin in batch.finals:
            self.finals[signin.correlation_id] = _line(signin)
        return []


def drive(store: SignInStore, messages: Sequence[Message], batch: int = 4, drain: bool = True) -> Flags:
    """Run messages through a pipeline on `store`, `batch` messages an invocation; return the counted flags."""
    flags = Flags()
    pipeline = Pipeline(store, SETTLE, observers=[flags])
    for start in range(0, len(messages), batch):
        pipeline.ingest(messages[start : start + batch])
    if drain:
        pipeline.drain()
    return flags


def verdicts(store: SignInStore) -> dict[str, dict[str, Any]]:
    """Every stored sign-in's verdict line, without the revision (which counts settles, not content)."""
    return {signin.correlation_id: _line(signin) for signin in store.signins()}


def _line(signin: SignIn) -> dict[str, Any]:
    line = verdict_line(signin)
    line.pop("revision")
    return line


def clean(messages: Sequence[Message]) -> tuple[dict[str, dict[str, Any]], Flags]:
    """One clean replay in memory: the answer every table run must give."""
    flags = drive(MemoryStore(), messages)
    return flags.finals, flags
