"""The rows of the sign-in table: keys, entities and the conditional operations that write them (pure).

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

Every row carries its schema version (`SIGNINS`, property `schema`); a row a newer release wrote is left
untouched (see `signin_table.TableStore` for what happens to its sign-in).

The I/O is `signin_table.TableStore`. Concurrency uses the service's own conditions only: insert fails if the sign-in
exists (409), updates carry the ETag read (412 if another writer got there
first), and settling deletes the due row If-Match its ETag, so exactly one
settler claims each generation. The loser of a race re-reads and folds again;
`fold()` is a join, so the result is the same in any order and with any repeats.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.data.tables import UpdateMode

from shared.core.detail import encode
from shared.core.request import Request
from shared.core.schema import Schema
from shared.core.signin import MAX_REQUESTS, SignIn
from shared.ingest.store import Update, fold
from shared.telemetry import log_event

from .entity import MAX_OPS, TooLarge, pack_text, quote, unpack_text

# Hash-bucket partitions of the sign-in table: STATE_SIGNIN_BUCKETS, fixed for the life of a table (changing it
# would re-home every sign-in), so the table records its count (`buckets_entity`). 8 is the default, and the count
# of every table made before the count was recorded.
BUCKETS = 8
MAX_BUCKETS = 100  # keys b00..b99
BUCKETS_ROW = "buckets"  # in the META partition
MAX_TX_CHARS = 1_500_000  # of property text per transaction; the service's limit is 4 MiB of payload
FILTER_KEYS = 14  # a $filter allows 15 comparisons: PartitionKey plus 14 RowKeys
DETAILS_CAP = 50  # request details kept per sign-in for the on-call lookup
DETAILS_CHARS = 30_000  # and at most this much JSON (one string property)
CLAIMS_PER_TX = 25  # settle writes 4 operations per sign-in, retention 2
ORPHAN_AGE = 600.0  # seconds after which a report row nobody acknowledged is reported again by whoever finds it
REMEMBERED_BATCHES = 8  # per sign-in row: the host retries a failed invocation within minutes
META = "meta"
CLOCK_ROW = "clock"
_SAFE_KEY = re.compile(r"[A-Za-z0-9._:@+=-]{1,200}")
# Version 1: the rows as commit 1aa6fb3 wrote them (unmarked); fixtures in tests/storage/fixtures/schema1.
SIGNINS = Schema("signins", 1)


# --- keys (pure) ---


def bucket_of(correlation_id: str, buckets: int = BUCKETS) -> str:
    digest = hashlib.sha1(correlation_id.encode("utf-8", "surrogatepass"), usedforsecurity=False).digest()
    return bucket_name(int.from_bytes(digest[:4], "big") % buckets)


def bucket_name(number: int) -> str:
    return f"b{number:02d}"


def buckets_entity(count: int) -> dict[str, Any]:
    """The row that records a table's bucket count, written once when the first instance opens the table."""
    return SIGNINS.mark({"PartitionKey": META, "RowKey": BUCKETS_ROW, "buckets": count})


def buckets_problem(configured: int, stored: int, table: str) -> str | None:
    """Why this instance must not start on this table (its bucket count is not the table's), or None."""
    if configured == stored:
        return None
    return (
        f"setting STATE_SIGNIN_BUCKETS: {configured}, but table {table} was created with {stored} buckets; a table's "
        f"bucket count never changes (every stored sign-in is placed by it). Set STATE_SIGNIN_BUCKETS={stored}, or "
        "start a new table with its own STATE_TABLE_PREFIX (docs/capacity.md)"
    )


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


def report_row(correlation_id: str) -> str:
    """Written when a sign-in is declared final, deleted once the declaration was reported (see TableStore)."""
    return "r|" + id_key(correlation_id)


def upper_bound(prefix: str, cutoff: float) -> str:
    """Exclusive RowKey bound of the rows of `prefix` at or before `cutoff` ('}' sorts right after '|')."""
    return prefix + "}" if math.isinf(cutoff) and cutoff > 0 else f"{prefix}|{time_key(cutoff)}}}"


# --- entities (pure) ---


def state_properties(signin: SignIn) -> dict[str, Any]:
    """The sign-in's state as JSON over `state0`, `state1`, ... (TooLarge when it outgrows one entity)."""
    return pack_text(orjson.dumps(signin.to_state()).decode(), "state", "state_parts")


def read_state(entity: dict[str, Any]) -> SignIn:
    return SignIn.from_state(orjson.loads(unpack_text(entity, "state", "state_parts")))


def add_details(details: list[dict[str, Any]], requests: Iterable[Request]) -> list[dict[str, Any]]:
    """The first DETAILS_CAP distinct requests, kept in event-time order; a copy adds nothing."""
    known = {d["id"] for d in details}
    added = list(details)
    size = len(orjson.dumps(added))
    for request in sorted(requests, key=lambda r: (r.at, r.id)):
        if request.id in known or len(added) >= DETAILS_CAP:
            continue
        detail = encode(request)
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


def signin_entity(
    bucket: str,
    signin: SignIn,
    due_key: str,
    final_key: str,
    details: list[dict[str, Any]],
    *,
    state: dict[str, Any] | None = None,
) -> dict:
    """The `s|` row; `state`: the sign-in's `state_properties` when the caller has them already."""
    entity = {
        "PartitionKey": bucket,
        "RowKey": signin_row(signin.correlation_id),
        **(state if state is not None else state_properties(signin)),
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
    return SIGNINS.mark(entity)


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
        return Planned(correlation_id, rerun(stored, stored.batches[batch], requests), [], None)
    update = fold(stored.signin() if stored else None, correlation_id, requests, clock)
    if not update.changed:
        return Planned(correlation_id, update, [], None)
    signin = update.signin
    due = due_row(signin.touched_at, correlation_id)
    details = add_details(stored.details if stored else [], requests)
    batches = remembered(stored.batches if stored else {}, batch, transitions(update))
    try:
        state = state_properties(signin)  # encoded once for both rows
        entity = {
            **signin_entity(bucket, signin, due, "", details, state=state),
            "batches": orjson.dumps(batches).decode(),
        }
        due_entity = SIGNINS.mark({"PartitionKey": bucket, "RowKey": due, **state})
    except TooLarge:
        # Cannot happen within the caps (MAX_REQUESTS, capped text); if it ever does, keep what is stored and set
        # this batch's requests aside (counted, dead-lettered) rather than failing every batch that touches it.
        log_event("signin_too_large", logging.WARNING, correlation_id=correlation_id[:200], set_aside=len(requests))
        nothing = replace(update, changed=False, created=False, became_unbound=False, unbound_at=None)
        nothing.over_limit = list(requests)
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


def refused(correlation_id: str, requests: Sequence[Request]) -> Update:
    """A sign-in whose row a newer release wrote: nothing is read or written; this batch's requests of it are set
    aside (counted, dead-lettered with their raw records), to be re-driven once the newer release runs."""
    return Update(
        signin=SignIn(correlation_id),
        changed=False,
        created=False,
        became_unbound=False,
        new_requests=0,
        duplicates=0,
        reopened=False,
        first_at=min((r.at for r in requests), default=0.0),
        unbound_at=None,
        refused=list(requests),
    )


def rerun(stored: Stored, flags: dict[str, Any], requests: Sequence[Request] = ()) -> Update:
    unbound_at = flags.get("unbound_at")
    kept = stored.state["requests"]
    full = len(kept) >= MAX_REQUESTS
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
        over_limit=[r for r in requests if full and r.id not in kept],
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
    report = {"PartitionKey": bucket, "RowKey": report_row(signin.correlation_id), "signin_row": merge["RowKey"]}
    return signin, [
        ("delete", due, {"etag": due.metadata["etag"], "match_condition": MatchConditions.IfNotModified}),
        ("update", SIGNINS.mark(merge), {"mode": UpdateMode.MERGE}),
        ("upsert", SIGNINS.mark({"PartitionKey": bucket, "RowKey": final}), {"mode": UpdateMode.REPLACE}),
        ("upsert", SIGNINS.mark(report), {"mode": UpdateMode.REPLACE}),
    ]


def claim_size(ops: list[tuple[Any, ...]]) -> int:
    """Characters of property text a claim's operations carry (transactions stay under the service's 4 MiB)."""
    return sum(len(str(v)) for op in ops for v in op[1].values())


def settle_filter(bucket: str, cutoff: float, orphaned_before: str | None) -> str:
    """One query per bucket: the due rows up to `cutoff`, and the report rows nobody acknowledged (written before
    `orphaned_before`, an OData time; None: all of them)."""
    due = range_filter(bucket, "d|", upper_bound("d", cutoff))
    orphans = range_filter(bucket, "r|", "r}")
    if orphaned_before is not None:
        orphans += f" and Timestamp lt datetime'{orphaned_before}'"
    return f"({due}) or ({orphans})"


def expire_ops(bucket: str, final: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Remove one expired sign-in; the retention row's ETag guards it (a reopening deletes that row)."""
    signin_key = "s|" + final["RowKey"].split("|", 2)[2]
    return [
        ("delete", final, {"etag": final.metadata["etag"], "match_condition": MatchConditions.IfNotModified}),
        ("delete", {"PartitionKey": bucket, "RowKey": signin_key}),
    ]


def range_filter(bucket: str, low: str, high: str) -> str:
    return f"PartitionKey eq {quote(bucket)} and RowKey ge {quote(low)} and RowKey lt {quote(high)}"


def expire_item(bucket: str, row: dict[str, Any]) -> tuple[str, list[tuple[Any, ...]]]:
    return row["RowKey"], expire_ops(bucket, row)
