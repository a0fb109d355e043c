"""The sign-in store on Azure Table Storage: correct with many writers, cheap per record.

The rows and the operations that write them are planned in `signin_rows` (pure);
this is the I/O. Every write is conditional (insert-if-absent, If-Match the ETag
read), so any number of instances share the table; the loser of a race re-reads
and folds again.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError, UpdateMode

from shared.core.clock import ClockState
from shared.core.detail import with_state
from shared.core.request import Request
from shared.core.signin import SignIn
from shared.ingest.store import Update, group_by_signin
from shared.telemetry import log_event

from .entity import is_conflict, open_table, quote
from .signin_rows import (
    BUCKETS,
    CLAIMS_PER_TX,
    CLOCK_ROW,
    FILTER_KEYS,
    META,
    Planned,
    Stored,
    bucket_of,
    chunks,
    expire_item,
    plan,
    range_filter,
    read_state,
    settle_ops,
    signin_row,
    stored_of,
    time_key,
    upper_bound,
)

MAX_ATTEMPTS = 8  # re-read and redo rounds for one bucket before the batch fails (the host retries it)
CACHE_SIZE = 20_000


class StoreConflict(RuntimeError):
    """A bucket kept conflicting with other writers; the batch fails and the host retries it."""


@dataclass
class TableStore:
    """SignInStore on Azure Table Storage. One per process; any number of processes may share the tables."""

    service: TableServiceClient
    prefix: str = "bindwatch"
    cache_size: int = CACHE_SIZE
    _cache: OrderedDict[str, Stored] = field(default_factory=OrderedDict, init=False)
    _clock_etag: str | None = field(default=None, init=False)
    table: TableClient = field(init=False)

    def __post_init__(self) -> None:
        self.table = self.service.get_table_client(f"{self.prefix}signins")

    def ensure(self) -> TableStore:
        """Create the table if it is missing (once per process)."""
        self.table = open_table(self.service, self.table.table_name)
        return self

    # -- merge --

    def merge(self, requests: Sequence[Request], clock: float, batch: str | None = None) -> list[Update]:
        groups = group_by_signin(requests)
        by_bucket: dict[str, dict[str, list[Request]]] = {}
        for correlation_id, group in groups.items():
            by_bucket.setdefault(bucket_of(correlation_id), {})[correlation_id] = group
        updates: dict[str, Update] = {}
        for bucket in sorted(by_bucket):
            updates.update(self._merge_bucket(bucket, by_bucket[bucket], clock, batch))
        return [updates[correlation_id] for correlation_id in groups]

    def _merge_bucket(
        self, bucket: str, groups: dict[str, list[Request]], clock: float, batch: str | None
    ) -> dict[str, Update]:
        done: dict[str, Update] = {}
        pending = groups
        for attempt in range(MAX_ATTEMPTS):
            stored = self._load(bucket, list(pending), fresh=attempt > 0)
            planned = [plan(bucket, cid, stored.get(cid), group, clock, batch=batch) for cid, group in pending.items()]
            failed: dict[str, list[Request]] = {}
            for item in planned:
                if not item.ops:
                    done[item.correlation_id] = item.update
            for chunk in chunks([p for p in planned if p.ops]):
                if self._commit(bucket, chunk):
                    done.update({p.correlation_id: p.update for p in chunk})
                else:
                    failed.update({p.correlation_id: pending[p.correlation_id] for p in chunk})
            if not failed:
                return done
            pending = failed
        raise StoreConflict(f"partition {bucket} still conflicting after {MAX_ATTEMPTS} attempts")

    def _commit(self, bucket: str, chunk: list[Planned]) -> bool:
        """Submit one transaction; False when another writer changed one of its sign-ins first."""
        ops = [op for item in chunk for op in item.ops]
        try:
            results = self.table.submit_transaction(ops)
        except TableTransactionError as error:
            if not is_conflict(error):
                raise
            for item in chunk:
                self._cache.pop(item.correlation_id, None)
            log_event("state_conflict", logging.DEBUG, partition=bucket, operations=len(ops))
            return False
        index = 0
        for item in chunk:
            if item.after is not None:
                item.after.etag = results[index]["etag"]
                self._remember(item.correlation_id, item.after)
            index += len(item.ops)
        return True

    def _load(self, bucket: str, correlation_ids: list[str], fresh: bool) -> dict[str, Stored]:
        """The stored rows of these sign-ins: from the cache when we wrote them last, else a query."""
        found: dict[str, Stored] = {}
        missing = []
        for correlation_id in correlation_ids:
            cached = None if fresh else self._cache.get(correlation_id)
            if cached is None:
                missing.append(correlation_id)
            else:
                found[correlation_id] = cached
        for start in range(0, len(missing), FILTER_KEYS):
            part = missing[start : start + FILTER_KEYS]
            keys = " or ".join(f"RowKey eq {quote(signin_row(cid))}" for cid in part)
            for entity in self.table.query_entities(f"PartitionKey eq {quote(bucket)} and ({keys})"):
                stored = stored_of(entity)
                found[stored.state["correlation_id"]] = stored
        return found

    def _remember(self, correlation_id: str, stored: Stored) -> None:
        self._cache[correlation_id] = stored
        self._cache.move_to_end(correlation_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    # -- settle --

    def settle(self, cutoff: float) -> list[SignIn]:
        if math.isnan(cutoff) or (math.isinf(cutoff) and cutoff < 0):
            return []
        finals: list[SignIn] = []
        for number in range(BUCKETS):
            bucket = f"b{number:02d}"
            rows = self.table.query_entities(range_filter(bucket, "d|", upper_bound("d", cutoff)))
            due = [row for row in rows if float(read_state(row).touched_at) <= cutoff]
            finals.extend(self._claim(bucket, due, settle_ops))
        return sorted(finals, key=lambda s: (s.touched_at, s.correlation_id))

    def _claim(self, bucket: str, rows: list[dict[str, Any]], make: Any) -> list[Any]:
        """Claim rows in transactions; when one loses a race, claim its rows one by one and skip the lost ones."""
        claimed: list[Any] = []
        for start in range(0, len(rows), CLAIMS_PER_TX):
            made = [make(bucket, row) for row in rows[start : start + CLAIMS_PER_TX]]
            if self._try([op for _, ops in made for op in ops]):
                claimed.extend(item for item, _ in made)
            elif len(made) > 1:
                claimed.extend(item for item, ops in made if self._try(ops))
        for item in claimed:
            if isinstance(item, SignIn):
                self._cache.pop(item.correlation_id, None)
        return claimed

    def _try(self, ops: list[tuple[Any, ...]]) -> bool:
        """Submit a claim; False when another process claimed or changed a row first."""
        try:
            self.table.submit_transaction(ops)
        except TableTransactionError as error:
            if is_conflict(error):
                return False
            raise
        return True

    # -- retention --

    def expire(self, before: float) -> int:
        """Delete final sign-ins last touched before `before` (event time); a RowKey range per bucket."""
        removed = 0
        for number in range(BUCKETS):
            bucket = f"b{number:02d}"
            high = f"f|{time_key(before)}"
            rows = list(self.table.query_entities(range_filter(bucket, "f|", high)))
            removed += len(self._claim(bucket, rows, expire_item))
        return removed

    # -- reading --

    def get(self, correlation_id: str) -> SignIn | None:
        try:
            entity = self.table.get_entity(bucket_of(correlation_id), signin_row(correlation_id))
        except ResourceNotFoundError:
            return None
        return read_state(entity)

    def details(self, correlation_id: str) -> list[dict[str, Any]]:
        """The kept requests of one sign-in, each with its merged binding, enforcement and code."""
        try:
            entity = self.table.get_entity(bucket_of(correlation_id), signin_row(correlation_id))
        except ResourceNotFoundError:
            return []
        states = read_state(entity).request_states()
        details = orjson.loads(entity.get("details") or "[]")
        return [with_state(d, *states[d["id"]]) if d.get("id") in states else d for d in details]

    def signins(self) -> Iterator[SignIn]:
        """Every stored sign-in, bucket by bucket (an export: it reads the whole table, as it must)."""
        for number in range(BUCKETS):
            bucket = f"b{number:02d}"
            for entity in self.table.query_entities(range_filter(bucket, "s|", "s}")):
                yield read_state(entity)

    # -- the shared event clock --

    def load_clock(self) -> ClockState | None:
        try:
            entity = self.table.get_entity(META, CLOCK_ROW)
        except ResourceNotFoundError:
            self._clock_etag = None
            return None
        self._clock_etag = entity.metadata["etag"]
        return ClockState(watermark=float(entity["watermark"]), wall=float(entity["wall"]))

    def save_clock(self, state: ClockState) -> None:
        """Move the clock forward only: write If-Match the ETag read; on a race re-read and compare."""
        entity = {"PartitionKey": META, "RowKey": CLOCK_ROW, "watermark": state.watermark, "wall": state.wall}
        for _ in range(MAX_ATTEMPTS):
            try:
                if self._clock_etag is None:
                    self._clock_etag = self.table.create_entity(entity)["etag"]
                else:
                    self._clock_etag = self.table.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=self._clock_etag,
                        match_condition=MatchConditions.IfNotModified,
                    )["etag"]
                return
            except HttpResponseError as error:
                if not is_conflict(error):
                    raise
                current = self.load_clock()
                if current is not None and current.watermark >= state.watermark:
                    return
        raise StoreConflict(f"the shared clock kept conflicting after {MAX_ATTEMPTS} attempts")
