"""The sign-in store on Azure Table Storage: correct with many writers, cheap per record.

The rows and the operations that write them are planned in `signin_rows` (pure);
this is the I/O. Every write is conditional (insert-if-absent, If-Match the ETag
read), so any number of instances share the table; the loser of a race re-reads
and folds again.

A row a newer release wrote (`SIGNINS` schema) is never read or overwritten here:
a batch's requests of that sign-in are set aside (counted, dead-lettered), its due
and report rows are left to settle there, retention leaves it, the lookup answers
503, and a newer clock row is neither read nor moved (this instance settles by its
batches' own event times). Each case is one `schema_refused` log line.
"""

from __future__ import annotations

import contextvars
import logging
import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError, UpdateMode

from shared.core.clock import ClockState
from shared.core.detail import with_state
from shared.core.request import Request
from shared.core.schema import Refused
from shared.core.signin import SignIn
from shared.ingest.store import Update, group_by_signin
from shared.settings import ConfigurationError
from shared.telemetry import log_event

from .entity import MAX_OPS, is_conflict, open_table, quote, read_row, readable_rows, submit
from .signin_rows import (
    BUCKETS,
    BUCKETS_ROW,
    CLAIMS_PER_TX,
    CLOCK_ROW,
    FILTER_KEYS,
    MAX_BUCKETS,
    MAX_TX_CHARS,
    META,
    ORPHAN_AGE,
    SIGNINS,
    Planned,
    Stored,
    bucket_name,
    bucket_of,
    buckets_entity,
    buckets_problem,
    chunks,
    claim_size,
    expire_item,
    plan,
    range_filter,
    read_state,
    refused,
    report_row,
    settle_filter,
    settle_ops,
    signin_row,
    stored_of,
    time_key,
    upper_bound,
)

MAX_ATTEMPTS = 8  # re-read and redo rounds for one bucket before the batch fails (the host retries it)
# What is left undone for a row a newer release wrote, as its log line says.
SET_ASIDE = "this batch's requests of the sign-in set aside (dead-lettered); the row left untouched"
NOT_SETTLED = "not settled or reported by this release: the release that wrote it does"
NOT_SHOWN = "not shown by this release (the lookup answers 503)"
CLOCK_LEFT = "the event clock is neither read nor moved by this release; it settles by its batches' event times"
ACK_DELAY = 60.0  # seconds an acknowledgement may wait to share a transaction with others of its bucket
CACHE_SIZE = 20_000
# Buckets worked on at once. Each is its own partition and rows, so they never race each other; while one waits for
# the service, another plans and encodes (measured against Azurite: our CPU and the service's overlap).
WORKERS = 4
T = TypeVar("T")
R = TypeVar("R")


def _odata_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _why(error: BaseException) -> str:
    """An error as a log line names it: its type, and the HTTP status and service code when it has them."""
    status = getattr(error, "status_code", None)
    code = getattr(error, "error_code", None)
    return " ".join(str(part) for part in (type(error).__name__, status, code) if part)


class StoreConflict(RuntimeError):
    """A bucket kept conflicting with other writers; the batch fails and the host retries it."""


class BucketMismatch(ConfigurationError):
    """The table's bucket count is not STATE_SIGNIN_BUCKETS: the worker must not start (every batch would fail)."""


@dataclass
class TableStore:
    """SignInStore on Azure Table Storage. One per process; any number of processes may share the tables."""

    service: TableServiceClient
    prefix: str = "bindwatch"
    buckets: int = BUCKETS  # STATE_SIGNIN_BUCKETS; `ensure` refuses a count that is not the table's
    cache_size: int = CACHE_SIZE
    workers: int = WORKERS
    _cache: OrderedDict[str, Stored] = field(default_factory=OrderedDict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)  # guards the cache
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _clock_etag: str | None = field(default=None, init=False)
    # bucket -> report row -> when first acknowledged (monotonic): a row acknowledged twice (reported, reopened,
    # reported again) is deleted once; a transaction may name an entity only once
    _acks: dict[str, dict[str, float]] = field(default_factory=dict, init=False)
    _clock_refused: bool = field(default=False, init=False)  # the clock row is a newer release's: leave it alone
    _guess_new: bool = field(default=True, init=False)  # an uncached sign-in is probably new: insert without a read
    _random: random.Random = field(default_factory=random.Random, init=False, repr=False)  # where a settle starts
    table: TableClient = field(init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.buckets <= MAX_BUCKETS:
            raise ValueError(f"a sign-in table has 1 to {MAX_BUCKETS} buckets, not {self.buckets}")
        self.table = self.service.get_table_client(f"{self.prefix}signins")

    def ensure(self) -> TableStore:
        """Create the table if it is missing (once per process), and refuse to start on a table whose bucket count
        is not `buckets` (ConfigurationError naming the setting, its value and the table's)."""
        self.table = open_table(self.service, self.table.table_name)
        problem = buckets_problem(self.buckets, self._table_buckets(), self.table.table_name)
        if problem:
            raise BucketMismatch(problem)
        return self

    def _table_buckets(self) -> int:
        """The table's bucket count: as recorded, else recorded now (the table's first opener writes it; a table
        that holds sign-ins but no record was made when the count was fixed at BUCKETS)."""
        recorded = self._recorded_buckets()
        if recorded is not None:
            return recorded
        made = BUCKETS if self._holds_signins() else self.buckets
        try:
            self.table.create_entity(buckets_entity(made))
        except ResourceExistsError:  # another instance recorded it first: theirs stands
            return self._recorded_buckets() or made
        return made

    def _recorded_buckets(self) -> int | None:
        try:
            return int(self.table.get_entity(META, BUCKETS_ROW)["buckets"])
        except ResourceNotFoundError:
            return None

    def _holds_signins(self) -> bool:
        rows = self.table.query_entities(
            "PartitionKey ge 'b' and PartitionKey lt 'c'", select=["PartitionKey"], results_per_page=1
        )
        return next(iter(rows), None) is not None

    # -- merge --

    def merge(self, requests: Sequence[Request], clock: float, batch: str | None = None) -> list[Update]:
        groups = group_by_signin(requests)
        by_bucket: dict[str, dict[str, list[Request]]] = {}
        for correlation_id, group in groups.items():
            by_bucket.setdefault(bucket_of(correlation_id, self.buckets), {})[correlation_id] = group
        updates: dict[str, Update] = {}
        for done in self._each(lambda b: self._merge_bucket(b, by_bucket[b], clock, batch), sorted(by_bucket)):
            updates.update(done)
        return [updates[correlation_id] for correlation_id in groups]

    def _each(self, work: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`work` over buckets, up to `workers` at once, results in the order of `items`. Every bucket's work ends
        before the first failure is raised, so a retry of the batch never overlaps writes of this attempt."""
        if self.workers <= 1 or len(items) <= 1:
            return [work(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="signin-table")
        context = contextvars.copy_context()  # each task runs in its own copy, as the caller's logs would
        futures = [self._pool.submit(context.copy().run, work, item) for item in items]
        wait(futures)
        return [future.result() for future in futures]

    def _merge_bucket(
        self, bucket: str, groups: dict[str, list[Request]], clock: float, batch: str | None
    ) -> dict[str, Update]:
        done: dict[str, Update] = {}
        pending = groups
        for attempt in range(MAX_ATTEMPTS):
            stored, newer = self._load(bucket, list(pending), fresh=attempt > 0)
            done.update({cid: refused(cid, pending[cid]) for cid in newer})
            pending = {cid: group for cid, group in pending.items() if cid not in newer}
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
            results = submit(self.table, ops)
        except TableTransactionError as error:
            if not is_conflict(error):
                raise
            self._forget(item.correlation_id for item in chunk)
            if any(op[0] == "create" for op in ops):
                self._guess_new = False  # read before writing until reads find mostly new sign-ins again
            log_event("state_conflict", logging.DEBUG, partition=bucket, operations=len(ops))
            return False
        index = 0
        for item in chunk:
            if item.after is not None:
                item.after.etag = results[index]["etag"]
                self._remember(item.correlation_id, item.after)
            index += len(item.ops)
        return True

    def _load(self, bucket: str, correlation_ids: list[str], fresh: bool) -> tuple[dict[str, Stored], set[str]]:
        """The stored rows of these sign-ins (from the cache when we wrote them last, else a query), and the
        sign-ins whose rows a newer release wrote (left untouched).

        A first attempt (not `fresh`) may guess that a sign-in it has not cached is new and read nothing: its
        insert is conditional (409 if the row exists), so a wrong guess costs one failed transaction and a read,
        never a wrong write. It guesses while guesses keep coming true (see `_guess_new`)."""
        found: dict[str, Stored] = {}
        newer: set[str] = set()
        missing = []
        for correlation_id in correlation_ids:
            cached = None if fresh else self._cached(correlation_id)
            if cached is None:
                missing.append(correlation_id)
            else:
                found[correlation_id] = cached
        if not fresh and self._guess_new:
            return found, newer
        hits = 0
        for start in range(0, len(missing), FILTER_KEYS):
            rows = {signin_row(cid): cid for cid in missing[start : start + FILTER_KEYS]}
            keys = " or ".join(f"RowKey eq {quote(row)}" for row in rows)
            entities = list(self.table.query_entities(f"PartitionKey eq {quote(bucket)} and ({keys})"))
            for entity in readable_rows(SIGNINS, entities, self.table.table_name, SET_ASIDE):
                stored = stored_of(entity)
                found[stored.state["correlation_id"]] = stored
            newer.update(rows[e["RowKey"]] for e in entities if not SIGNINS.readable(e))
            hits += len(entities)
        if missing:
            self._guess_new = hits * 2 < len(missing)  # most uncached sign-ins were new: guess again next time
        return found, newer

    def _cached(self, correlation_id: str) -> Stored | None:
        with self._lock:
            return self._cache.get(correlation_id)

    def _remember(self, correlation_id: str, stored: Stored) -> None:
        with self._lock:
            self._cache[correlation_id] = stored
            self._cache.move_to_end(correlation_id)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def _forget(self, correlation_ids: Iterable[str]) -> None:
        with self._lock:
            for correlation_id in correlation_ids:
                self._cache.pop(correlation_id, None)

    # -- settle --

    def settle(self, cutoff: float, orphan_age: float = ORPHAN_AGE) -> list[SignIn]:
        """Claim what is due, bucket by bucket; with it, sign-ins declared final earlier but never reported.

        Claiming writes a report row (`r|`) in the same transaction as the final state; `acknowledge` deletes
        it once the caller has reported the sign-in. A storage fault between claiming and reporting (or a
        claim whose answer was lost) leaves the report row, and a later settle reports the sign-in then, so
        whatever is declared final is reported, and once: taking an orphan over is a conditional write.
        """
        if math.isnan(cutoff) or (math.isinf(cutoff) and cutoff < 0):
            return []
        self._flush_acks(force=False)
        orphaned_before = _odata_time(time.time() - orphan_age) if orphan_age > 0 else None
        found = self._each(lambda bucket: self._settle_bucket(bucket, cutoff, orphaned_before), self._settle_order())
        return sorted((s for finals in found for s in finals), key=lambda s: (s.touched_at, s.correlation_id))

    def _settle_bucket(self, bucket: str, cutoff: float, orphaned_before: str | None) -> list[SignIn]:
        """One bucket's due sign-ins claimed, and its orphaned report rows adopted: one query, then transactions.

        A claim transaction that loses a race means another instance is settling this bucket too: what is still
        due is read again (one query; the rows the other claimed are gone from it) and claimed, instead of
        trying each row of the lost transaction on its own (mostly 404s). After MAX_ATTEMPTS such rounds the rest
        stays due for the next settle, by whichever instance."""
        due, orphans = [], []
        mine = set(self._acks.get(bucket, ()))  # reported here, the acknowledgement pending
        rows = self.table.query_entities(settle_filter(bucket, cutoff, orphaned_before))
        for row in readable_rows(SIGNINS, rows, self.table.table_name, NOT_SETTLED):
            if not row["RowKey"].startswith("r|"):
                due.append(row)
            elif row["RowKey"] not in mine:
                orphans.append(row)
        claimed: list[SignIn] = []
        for _ in range(MAX_ATTEMPTS):
            got, lost = self._claim_due(bucket, [r for r in due if read_state(r).touched_at <= cutoff])
            claimed += got
            if not lost:
                break
            log_event("settle_contended", logging.DEBUG, partition=bucket, claimed=len(got))
            again = self.table.query_entities(range_filter(bucket, "d|", upper_bound("d", cutoff)))
            due = readable_rows(SIGNINS, again, self.table.table_name, NOT_SETTLED)
        self._forget(signin.correlation_id for signin in claimed)
        return claimed + self._adopt(bucket, orphans)

    def _claim_due(self, bucket: str, rows: list[dict[str, Any]]) -> tuple[list[SignIn], bool]:
        """Claim due rows in transactions until one loses a race: the sign-ins claimed, and whether one lost."""
        claimed: list[SignIn] = []
        for made in self._claim_batches(bucket, rows, settle_ops):
            if not self._try([op for _, ops in made for op in ops]):
                return claimed, True
            claimed += [item for item, _ in made]
        return claimed, False

    def _settle_order(self) -> list[str]:
        """Every bucket, starting at one drawn for each settle: instances that settle at the same moment begin in
        different buckets (the workers take them in this order), so the later one mostly finds the due rows the
        other claimed gone from its query, instead of racing it for them."""
        buckets = self._buckets()
        start = self._random.randrange(len(buckets))
        return buckets[start:] + buckets[:start]

    def _buckets(self) -> list[str]:
        return [bucket_name(number) for number in range(self.buckets)]

    def acknowledge(self, finals: Sequence[SignIn], flush: bool = False) -> None:
        """These final sign-ins were reported: their report rows go (in batches, within a minute or so)."""
        now = time.monotonic()
        for signin in finals:
            bucket = bucket_of(signin.correlation_id, self.buckets)
            self._acks.setdefault(bucket, {}).setdefault(report_row(signin.correlation_id), now)
        self._flush_acks(force=flush)

    def _flush_acks(self, force: bool) -> None:
        """Delete acknowledged report rows, a transaction per bucket, once a bucket has many or old ones.

        Never raises: a report row whose delete failed stays pending for the next flush (for up to ORPHAN_AGE,
        after which any settle adopts the row and reports its sign-in again, as after a restart), so a failed
        acknowledgement costs at most a second report, never the batches that follow."""
        now = time.monotonic()
        for bucket, pending in list(self._acks.items()):
            if not force and len(pending) < MAX_OPS // 2 and now - min(pending.values()) < ACK_DELAY:
                continue
            del self._acks[bucket]  # out before any request: a failure below cannot wedge the bucket
            keys = list(pending)  # each row once (a dict)
            for start in range(0, len(keys), MAX_OPS):
                failed = self._delete_reports(bucket, keys[start : start + MAX_OPS])
                kept = {key: pending[key] for key in failed if now - pending[key] < ORPHAN_AGE}
                if kept:
                    self._acks.setdefault(bucket, {}).update(kept)

    def _delete_reports(self, bucket: str, keys: list[str]) -> list[str]:
        """Delete these report rows (one transaction; row by row when one was gone already, as when another
        instance adopted and reported it); the keys whose delete failed for another reason."""

        def deletes(chunk: list[str]) -> list[tuple[Any, ...]]:
            return [("delete", {"PartitionKey": bucket, "RowKey": key}) for key in chunk]

        try:
            if self._try(deletes(keys)) or len(keys) == 1:
                return []  # deleted, or the one row was gone already
        except (AzureError, OSError) as error:
            log_event("acknowledgement_failed", logging.WARNING, partition=bucket, rows=len(keys), error=_why(error))
            return keys
        failed = []
        for key in keys:
            try:
                self._try(deletes([key]))  # False: gone already, which is what was wanted
            except (AzureError, OSError) as error:
                log_event("acknowledgement_failed", logging.WARNING, partition=bucket, rows=1, error=_why(error))
                failed.append(key)
        return failed

    def _adopt(self, bucket: str, orphans: list[dict[str, Any]]) -> list[SignIn]:
        """Report rows nobody acknowledged: take each over (If-Match), then report its sign-in as it is now."""
        adopted: list[SignIn] = []
        for row in orphans:
            taken = SIGNINS.mark(
                {"PartitionKey": bucket, "RowKey": row["RowKey"], "signin_row": row.get("signin_row", "")}
            )
            condition = {"etag": row.metadata["etag"], "match_condition": MatchConditions.IfNotModified}
            if not self._try([("update", taken, {**condition, "mode": UpdateMode.REPLACE})]):
                continue  # another instance took it over first
            try:
                entity = self.table.get_entity(bucket, row.get("signin_row") or "")
                entity = read_row(SIGNINS, entity, self.table.table_name, NOT_SETTLED)
            except ResourceNotFoundError:  # retention removed it since: nothing left to report
                self._try([("delete", {"PartitionKey": bucket, "RowKey": row["RowKey"]})])
                continue
            except Refused:  # a newer release stored it since: that release reports it
                continue
            signin = read_state(entity)
            log_event("signin_reported_late", logging.WARNING, correlation_id=signin.correlation_id[:200])
            adopted.append(signin)
        return adopted

    def _claim(self, bucket: str, rows: list[dict[str, Any]], make: Any) -> list[Any]:
        """Claim rows in transactions; when one loses a race, claim its rows one by one and skip the lost ones."""
        claimed: list[Any] = []
        for made in self._claim_batches(bucket, rows, make):
            claimed += self._commit_claims(made)
        return claimed

    def _claim_batches(
        self, bucket: str, rows: list[dict[str, Any]], make: Any
    ) -> Iterator[list[tuple[Any, list[tuple[Any, ...]]]]]:
        """Each row's claim (`make`), grouped into transactions of at most CLAIMS_PER_TX claims and MAX_TX_CHARS
        of text."""
        batch: list[tuple[Any, list[tuple[Any, ...]]]] = []
        size = 0
        for row in rows:
            item, ops = make(bucket, row)
            grown = claim_size(ops)
            if batch and (len(batch) >= CLAIMS_PER_TX or size + grown > MAX_TX_CHARS):
                yield batch
                batch, size = [], 0
            batch.append((item, ops))
            size += grown
        if batch:
            yield batch

    def _commit_claims(self, made: list[tuple[Any, list[tuple[Any, ...]]]]) -> list[Any]:
        if self._try([op for _, ops in made for op in ops]):
            return [item for item, _ in made]
        if len(made) == 1:
            return []
        return [item for item, ops in made if self._try(ops)]

    def _try(self, ops: list[tuple[Any, ...]]) -> bool:
        """Submit a claim; False when another process claimed or changed a row first."""
        try:
            submit(self.table, ops)
        except TableTransactionError as error:
            if is_conflict(error):
                return False
            raise
        return True

    # -- retention --

    def expire(self, before: float) -> int:
        """Delete final sign-ins last touched before `before` (event time); a RowKey range per bucket."""
        return sum(self._each(lambda bucket: self._expire_bucket(bucket, before), self._buckets()))

    def _expire_bucket(self, bucket: str, before: float) -> int:
        found = self.table.query_entities(range_filter(bucket, "f|", f"f|{time_key(before)}"))
        rows = readable_rows(SIGNINS, found, self.table.table_name, "not expired by this release")
        return len(self._claim(bucket, rows, expire_item))

    # -- reading --

    def get(self, correlation_id: str) -> SignIn | None:
        """The stored sign-in; Refused (after a log line) when a newer release stored it."""
        try:
            entity = self.table.get_entity(bucket_of(correlation_id, self.buckets), signin_row(correlation_id))
        except ResourceNotFoundError:
            return None
        return read_state(read_row(SIGNINS, entity, self.table.table_name, NOT_SHOWN))

    def details(self, correlation_id: str) -> list[dict[str, Any]]:
        """The kept requests of one sign-in, each with its merged binding, enforcement and code."""
        try:
            entity = self.table.get_entity(bucket_of(correlation_id, self.buckets), signin_row(correlation_id))
        except ResourceNotFoundError:
            return []
        states = read_state(read_row(SIGNINS, entity, self.table.table_name, NOT_SHOWN)).request_states()
        details = orjson.loads(entity.get("details") or "[]")
        return [with_state(d, *states[d["id"]]) if d.get("id") in states else d for d in details]

    def signins(self) -> Iterator[SignIn]:
        """Every stored sign-in, bucket by bucket (an export: it reads the whole table, as it must)."""
        for bucket in self._buckets():
            rows = self.table.query_entities(range_filter(bucket, "s|", "s}"))
            for entity in readable_rows(SIGNINS, rows, self.table.table_name, "left out of this export"):
                yield read_state(entity)

    # -- the shared event clock --

    def load_clock(self) -> ClockState | None:
        try:
            entity = read_row(SIGNINS, self.table.get_entity(META, CLOCK_ROW), self.table.table_name, CLOCK_LEFT)
        except ResourceNotFoundError:
            self._clock_etag = None
            return None
        except Refused:
            self._clock_etag, self._clock_refused = None, True
            return None
        self._clock_etag, self._clock_refused = entity.metadata["etag"], False
        return ClockState(watermark=float(entity["watermark"]), wall=float(entity["wall"]))

    def save_clock(self, state: ClockState) -> None:
        """Move the clock forward only: write If-Match the ETag read; on a race re-read and compare.

        A clock row of a newer release is left as it is (this instance settles by its batches' event times)."""
        entity = SIGNINS.mark(
            {"PartitionKey": META, "RowKey": CLOCK_ROW, "watermark": state.watermark, "wall": state.wall}
        )
        for _ in range(MAX_ATTEMPTS):
            if self._clock_refused:
                return
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
