"""Sign-in state in Azure Table Storage, correct with many writers and cheap per record.

Layout of table `<prefix>signins` (one table, so every write of a sign-in is one
entity group transaction):

- PartitionKey `bNN`: a fixed hash bucket of the correlation ID, so a batch's
  sign-ins fill few partitions and one transaction per bucket writes them all.
- `s|<id>`: the sign-in (`SignIn.to_state()` as JSON, split over properties of
  at most 30,000 characters), queryable columns, and capped per-request details.
- `d|<touched_at>|<id>`: the due index of an open sign-in, with a copy of its
  state. Written, moved and deleted in the same transaction as `s|<id>`, so a
  crash cannot split them. Settling is a RowKey range query per bucket.
- `f|<touched_at>|<id>`: the retention index of a final sign-in, written by the
  settle transaction and deleted by a reopening one. Retention is a RowKey range
  query per bucket.
- PartitionKey `meta`, RowKey `clock`: the shared event clock.

Concurrency uses the service's own conditions only: insert fails if the sign-in
exists (409), updates carry the ETag read (412 if another writer got there
first), and settling deletes the due row If-Match its ETag, so exactly one
settler claims each generation. The loser of a race re-reads and folds again;
`fold()` is a join, so the result is the same in any order and with any repeats.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError, UpdateMode

from .request import Request, iso
from .settings import Settings
from .signin import SignIn
from .storage import table_service
from .store import ClockState, Update, fold, group_by_signin
from .telemetry import log_event

BUCKETS = 8  # fixed for the life of a table: changing it would re-home every sign-in
MAX_OPS = 100  # entity group transaction limit
MAX_TX_CHARS = 1_500_000  # of property text per transaction; the service's limit is 4 MiB of payload
FILTER_KEYS = 14  # a $filter allows 15 comparisons: PartitionKey plus 14 RowKeys
STATE_CHUNK = 30_000  # characters per string property (64 KiB of UTF-16)
MAX_STATE_PARTS = 14  # 420,000 characters (840 KB in UTF-16) of state; an entity holds at most 1 MiB
DETAILS_CAP = 50  # request details kept per sign-in for the on-call lookup
DETAILS_CHARS = 30_000  # and at most this much JSON (one string property)
CLAIMS_PER_TX = 33  # settle and retention write up to 3 operations per sign-in
MAX_ATTEMPTS = 8  # re-read and redo rounds for one bucket before the batch fails (the host retries it)
CACHE_SIZE = 20_000
REMEMBERED_BATCHES = 8  # per sign-in row: the host retries a failed invocation within minutes
META = "meta"
CLOCK_ROW = "clock"
_SAFE_KEY = re.compile(r"[A-Za-z0-9._:@+=-]{1,200}")
_CONFLICTS = (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError)


class StoreConflict(RuntimeError):
    """A bucket kept conflicting with other writers; the batch fails and the host retries it."""


# --- keys (pure) ---


def bucket_of(correlation_id: str) -> str:
    digest = hashlib.sha1(correlation_id.encode("utf-8", "surrogatepass"), usedforsecurity=False).digest()
    return f"b{int.from_bytes(digest[:4], 'big') % BUCKETS:02d}"


def id_key(correlation_id: str) -> str:
    """The correlation ID as a RowKey part; anything unusual (/, #, ?, controls, length) is hashed."""
    if _SAFE_KEY.fullmatch(correlation_id):
        return correlation_id
    return "~" + hashlib.sha256(correlation_id.encode("utf-8", "surrogatepass")).hexdigest()


def time_key(seconds: float) -> str:
    """Event time that sorts as text: 13 integer digits, milliseconds."""
    return f"{min(max(seconds, 0.0), 9e12):017.3f}"


def signin_row(correlation_id: str) -> str:
    return "s|" + id_key(correlation_id)


def due_row(touched_at: float, correlation_id: str) -> str:
    return f"d|{time_key(touched_at)}|{id_key(correlation_id)}"


def final_row(touched_at: float, correlation_id: str) -> str:
    return f"f|{time_key(touched_at)}|{id_key(correlation_id)}"


def upper_bound(prefix: str, cutoff: float) -> str:
    """Exclusive RowKey bound of the rows of `prefix` at or before `cutoff` ('}' sorts right after '|')."""
    return prefix + "}" if math.isinf(cutoff) and cutoff > 0 else f"{prefix}|{time_key(cutoff)}}}"


# --- entities (pure) ---


def state_properties(signin: SignIn) -> dict[str, Any]:
    text = orjson.dumps(signin.to_state()).decode()
    parts = [text[i : i + STATE_CHUNK] for i in range(0, len(text), STATE_CHUNK)] or [""]
    if len(parts) > MAX_STATE_PARTS:
        raise ValueError(f"sign-in state of {len(text)} characters exceeds one entity")
    return {"state_parts": len(parts), **{f"state{i}": part for i, part in enumerate(parts)}}


def read_state(entity: dict[str, Any]) -> SignIn:
    text = "".join(entity[f"state{i}"] for i in range(int(entity["state_parts"])))
    return SignIn.from_state(orjson.loads(text))


def request_detail(request: Request) -> dict[str, Any]:
    """What the on-call lookup shows of one request (binding and code come from the merged state)."""
    return {
        "id": request.id,
        "at": iso(request.at),
        "category": request.category,
        "app": request.app,
        "resource": request.resource,
        "os": request.os,
        "trust_type": request.trust_type,
        "client_app": request.client_app,
        "browser": request.browser,
        "policies": [list(p) for p in request.policies],
    }


def add_details(details: list[dict[str, Any]], requests: Iterable[Request]) -> list[dict[str, Any]]:
    """The first DETAILS_CAP distinct requests, kept in event-time order; a copy adds nothing."""
    known = {d["id"] for d in details}
    added = list(details)
    size = len(orjson.dumps(added))
    for request in sorted(requests, key=lambda r: (r.at, r.id)):
        if request.id in known or len(added) >= DETAILS_CAP:
            continue
        detail = request_detail(request)
        grown = len(orjson.dumps(detail)) + 1
        if size + grown > DETAILS_CHARS:
            break
        known.add(request.id)
        added.append(detail)
        size += grown
    return added


@dataclass(slots=True)
class Stored:
    """One `s|` row as read: the state, its ETag, and which index row stands for it."""

    state: dict[str, Any]
    etag: str
    due_key: str  # "" when final
    final_key: str  # "" when open (or never settled)
    details: list[dict[str, Any]]
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)  # recent batch key -> what it changed

    def signin(self) -> SignIn:
        # from_state copies, so folding never touches the cached state
        return SignIn.from_state(self.state)


def stored_of(entity: dict[str, Any]) -> Stored:
    return Stored(
        state=read_state(entity).to_state(),
        etag=entity.metadata["etag"],
        due_key=entity.get("due_key") or "",
        final_key=entity.get("final_key") or "",
        details=orjson.loads(entity.get("details") or "[]"),
        batches=orjson.loads(entity.get("batches") or "{}"),
    )


def signin_entity(bucket: str, signin: SignIn, due_key: str, final_key: str, details: list[dict[str, Any]]) -> dict:
    return {
        "PartitionKey": bucket,
        "RowKey": signin_row(signin.correlation_id),
        **state_properties(signin),
        "correlation_id": signin.correlation_id[:1000],
        "verdict": signin.verdict,
        "user": signin.user,
        "first_seen": signin.first_seen,
        "last_seen": signin.last_seen,
        "touched_at": signin.touched_at,
        "finals": signin.finals,
        "final": not due_key,
        "due_key": due_key,
        "final_key": final_key,
        "details": orjson.dumps(details).decode(),
    }


@dataclass(slots=True)
class Planned:
    """One sign-in's share of a transaction: its operations, and what to tell the pipeline on success."""

    correlation_id: str
    update: Update
    ops: list[tuple[Any, ...]]
    after: Stored | None  # the row as it will be (etag filled in after the commit)
    size: int = 0


def plan(
    bucket: str,
    correlation_id: str,
    stored: Stored | None,
    requests: Sequence[Request],
    clock: float,
    *,
    batch: str | None = None,
) -> Planned:
    """Pure: fold a batch into one stored sign-in and say which conditional operations write it."""
    if batch and stored is not None and batch in stored.batches:
        # A rerun of a batch that already wrote this row (the host retries a failed invocation): tell its
        # transitions again, so counting that failed after the write still counts them, exactly once.
        return Planned(correlation_id, rerun(stored, stored.batches[batch]), [], None)
    update = fold(stored.signin() if stored else None, correlation_id, requests, clock)
    if not update.changed:
        return Planned(correlation_id, update, [], None)
    signin = update.signin
    due = due_row(signin.touched_at, correlation_id)
    details = add_details(stored.details if stored else [], requests)
    batches = remembered(stored.batches if stored else {}, batch, transitions(update))
    try:
        entity = {**signin_entity(bucket, signin, due, "", details), "batches": orjson.dumps(batches).decode()}
        due_entity = {"PartitionKey": bucket, "RowKey": due, **state_properties(signin)}
    except ValueError:
        # Thousands of requests under one correlation ID outgrow a row. Keep what is stored and say so, rather
        # than failing (and dead-lettering) every batch that touches this sign-in.
        log_event("signin_too_large", logging.WARNING, correlation_id=correlation_id[:200], dropped=len(requests))
        nothing = replace(update, changed=False, created=False, became_unbound=False, unbound_at=None)
        return Planned(correlation_id, nothing, [], None)
    if stored is None:
        ops: list[tuple[Any, ...]] = [("create", entity), ("create", due_entity)]
    else:
        condition = {"etag": stored.etag, "match_condition": MatchConditions.IfNotModified, "mode": UpdateMode.REPLACE}
        ops = [("update", entity, condition)]
        if stored.due_key == due:
            ops.append(("update", due_entity, {"mode": UpdateMode.REPLACE}))
        else:
            old = stored.due_key or stored.final_key
            if old:
                ops.append(("delete", {"PartitionKey": bucket, "RowKey": old}))
            ops.append(("create", due_entity))
    size = sum(len(str(v)) for op in ops for v in op[1].values())
    after = Stored(signin.to_state(), "", due, "", details, batches)
    return Planned(correlation_id, update, ops, after, size)


def remembered(known: dict[str, dict[str, Any]], batch: str | None, flags: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The last REMEMBERED_BATCHES batches that wrote a row, so a rerun is recognised even after other writes."""
    if not batch:
        return known
    kept = {k: v for k, v in known.items() if k != batch}
    kept[batch] = flags
    return dict(list(kept.items())[-REMEMBERED_BATCHES:])


def transitions(update: Update) -> dict[str, Any]:
    """What a batch did to a sign-in, as a rerun of it must report again."""
    return {
        "created": update.created,
        "first_at": update.first_at,
        "unbound_at": update.unbound_at,
        "new_requests": update.new_requests,
        "reopened": update.reopened,
    }


def rerun(stored: Stored, flags: dict[str, Any]) -> Update:
    unbound_at = flags.get("unbound_at")
    return Update(
        signin=stored.signin(),
        changed=False,
        created=bool(flags.get("created")),
        became_unbound=unbound_at is not None,
        new_requests=int(flags.get("new_requests", 0)),
        duplicates=0,
        reopened=bool(flags.get("reopened")),
        first_at=float(flags.get("first_at", stored.state["first_seen"])),
        unbound_at=None if unbound_at is None else float(unbound_at),
    )


def chunks(planned: Sequence[Planned]) -> Iterator[list[Planned]]:
    """Transactions of at most MAX_OPS operations and MAX_TX_CHARS of text."""
    chunk: list[Planned] = []
    ops = chars = 0
    for item in planned:
        if chunk and (ops + len(item.ops) > MAX_OPS or chars + item.size > MAX_TX_CHARS):
            yield chunk
            chunk, ops, chars = [], 0, 0
        chunk.append(item)
        ops += len(item.ops)
        chars += item.size
    if chunk:
        yield chunk


def settle_ops(bucket: str, due: dict[str, Any]) -> tuple[SignIn, list[tuple[Any, ...]]]:
    """Claim one due row: delete it If-Match (the claim), mark its sign-in final, index it for retention.

    Every write to an open sign-in moves or rewrites its due row, so the due row's ETag
    guards the sign-in too: the merge below cannot overwrite a newer state.
    """
    signin = read_state(due)
    signin.finals += 1
    final = final_row(signin.touched_at, signin.correlation_id)
    merge = {
        "PartitionKey": bucket,
        "RowKey": signin_row(signin.correlation_id),
        **state_properties(signin),
        "finals": signin.finals,
        "final": True,
        "due_key": "",
        "final_key": final,
    }
    return signin, [
        ("delete", due, {"etag": due.metadata["etag"], "match_condition": MatchConditions.IfNotModified}),
        ("update", merge, {"mode": UpdateMode.MERGE}),
        ("upsert", {"PartitionKey": bucket, "RowKey": final}, {"mode": UpdateMode.REPLACE}),
    ]


def expire_ops(bucket: str, final: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Remove one expired sign-in; the retention row's ETag guards it (a reopening deletes that row)."""
    signin_key = "s|" + final["RowKey"].split("|", 2)[2]
    return [
        ("delete", final, {"etag": final.metadata["etag"], "match_condition": MatchConditions.IfNotModified}),
        ("delete", {"PartitionKey": bucket, "RowKey": signin_key}),
    ]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def range_filter(bucket: str, low: str, high: str) -> str:
    return f"PartitionKey eq {_quote(bucket)} and RowKey ge {_quote(low)} and RowKey lt {_quote(high)}"


# --- the store (I/O) ---


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
        with contextlib.suppress(ResourceExistsError):
            self.service.create_table(self.table.table_name)
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
            if error.status_code not in (404, 409, 412):
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
            keys = " or ".join(f"RowKey eq {_quote(signin_row(cid))}" for cid in part)
            for entity in self.table.query_entities(f"PartitionKey eq {_quote(bucket)} and ({keys})"):
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
            if error.status_code in (404, 409, 412):
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
            removed += len(self._claim(bucket, rows, _expire_item))
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
        for detail in details:
            binding, enforcement, code = states.get(detail["id"], (None, None, None))
            detail.update(
                binding=binding.label if binding is not None else None,
                enforcement=enforcement.label if enforcement is not None else None,
                code=code,
            )
        return details

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
            except _CONFLICTS:
                current = self.load_clock()
                if current is not None and current.watermark >= state.watermark:
                    return
        raise StoreConflict(f"the shared clock kept conflicting after {MAX_ATTEMPTS} attempts")


def open_table_store(settings: Settings, **options: Any) -> TableStore:
    """The store the function and `--store table` use: the configured account, table created if missing."""
    return TableStore(table_service(settings, **options), prefix=settings.state_table_prefix).ensure()


def _expire_item(bucket: str, row: dict[str, Any]) -> tuple[str, list[tuple[Any, ...]]]:
    return row["RowKey"], expire_ops(bucket, row)
