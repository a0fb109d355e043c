"""Window counts, rule memory, alert states and incidents in Azure Table Storage; every write conditional.

Table layout (one table, `<prefix>detect`), every row bounded:
- window buckets: PartitionKey "w", RowKey "<minute, 10 digits>:<shard, 2 digits>": a minute's groups are spread
  over `BUCKET_SHARDS` rows by a hash of rule and group, each row's JSON split over string properties (d0, d1,
  ...) and held under `ROW_CHARS` characters: a row that would outgrow it sheds its top lists, then its
  examples, then groups that only count judged sign-ins, then groups (each step counted and logged once);
- rule memory: PartitionKey "s", RowKey "r:<rule>", and its groups' memory in "m:<rule>:<shard>" (16 shards,
  each capped by `shared.detect.memory`);
- alert states "a:<fingerprint>" and incidents "i:<id>", with `Live` true while they need loading.

Per batch that is 1 query + 1 entity-group transaction for the buckets (more only on a conflict, when a batch
touches many minutes, or when its rows would pass the 4 MiB a transaction carries), 1 query for the states, and
a write per alert decision, incident change or memory change (learning rules: their changed shards every
window, in transactions).

Schema versions (`DETECTION`, property `schema` on every row written here):
- 2: the layout above, as this module writes it.
- 1 (unmarked): rows written before rows were marked, in one of two layouts. The detection rewrite (6e17f11)
  wrote the layout above. The releases before it (10963f5 and earlier) wrote other shapes. Window rows were
  keyed by the minute alone, with four-item counts (no user sketch). A rule's episodes were in its own row
  (`seen`, no shards). Alert states carried their own `outbox` of decisions and a `notified` flag. There were
  no incidents. Upgrading from 1 to 2 changes nothing stored, because the readers here take both layouts as
  they are:
  - An old minute row counts in its minute (`_by_minute`). Nothing rewrites it; pruning drops it with the
    rest of its minute. A redelivered batch it already took in does not count twice (`_took_in`).
  - Four-item counts read with no users, so a rule counting `users` sees fewer people in those minutes, for
    at most one window.
  - `seen` is read as `RuleState.legacy`, and the detector moves it into shards once.
  - An alert state's `outbox` and `notified` are ignored, so a firing alert keeps its episode, repeats and
    resolves. It belongs to no incident, so its decisions from then on are logged as alert lines and go to no
    destination. That includes one more `firing` at its first evaluation, because its severity was not stored.
    Decisions still waiting in an old `outbox` (the group wait, under a few minutes) are dropped.
  Fixtures: `tests/storage/fixtures/detect1.json` (10963f5) and `detect2.json` (this layout), made by
  `tests/support/capture_detection.py`.
- Newer than 2 (a newer release still stopping during a deployment, or a rollback): never read and never
  written here. Each time such rows are met, one `schema_refused` line per kind of row names them and says what
  this release does instead (`LEFT`):
  - A window row is not counted, and the batch's counts for that minute and shard are dropped
    (`detection_degraded` `bucket_refused`).
  - A rule with any newer memory row gets none of its memory loaded or written, so a rule that warms up or
    learns stays warming up here.
  - A newer incident counts as gone, and its alerts' updates are not recorded in it.
  - A newer alert state is left out of the live alerts and not decided here (the detector skips what `newer`
    holds), so it is never decided twice. One that turns newer between the load and the write makes `load_alert`
    raise `Refused`: that batch is retried, and the retry's load leaves the alert alone.
  - Pruning leaves newer rows alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, MutableMapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from shared.core.schema import SCHEMA, Refused, Schema
from shared.detect.incident import IncidentState
from shared.detect.lifecycle import AlertState
from shared.detect.memory import GroupMemory, RuleState
from shared.detect.state import Degraded, DetectionState, StateConflict
from shared.detect.window import Bucket, Buckets, bucket_from_data, merge_bucket

from .entity import (
    MAX_OPS,
    TooLarge,
    etag_of,
    is_conflict,
    log_refused,
    open_table,
    pack_text,
    read_row,
    unpack_text,
)

RETRIES = 8
BUCKET_SHARDS = 8
ROW_CHARS = 300_000  # characters of JSON in one bucket row (an entity holds 1 MiB of UTF-16 text)
TRANSACTION_CHARS = 1_500_000  # characters of rows in one transaction (a transaction carries 4 MiB)
STATE_RETENTION = timedelta(days=7)  # alert states and incidents no longer live are deleted after this


def _unmarked(row: MutableMapping[str, Any]) -> None:
    """Version 1 to 2 changes nothing stored: the readers here take both layouts a version-1 row may have (module
    docstring), so the only difference is the mark."""


DETECTION = Schema("detect", 2, {1: _unmarked})
LEFT = {  # what this release does instead of reading a newer row, by kind (the schema_refused line says it)
    "window": "not counted here; this release's counts for that minute and shard are dropped, the row is kept",
    "memory": "none of that rule's memory is read or written here: if it warms up or learns, it stays warming up",
    "alert": "left to the newer release: not decided here",
    "incident": "left to the newer release: treated as gone, so this release neither tells nor changes it",
    "prune": "not pruned by this release",
}


def pack(data: Any) -> dict[str, Any]:
    """JSON over as many string properties as it needs (TooLarge when it cannot fit one entity)."""
    return pack_text(json.dumps(data, separators=(",", ":"), ensure_ascii=False))


def unpack(entity: dict[str, Any]) -> Any:
    return json.loads(unpack_text(entity))


def _minute_key(minute: int) -> str:
    return f"{minute:010d}"


def bucket_shard(rule: str, key: str) -> int:
    """The row of a minute a rule's group is counted in: stable across processes."""
    digest = hashlib.blake2b(f"{rule}\x1f{key}".encode("utf-8", "surrogatepass"), digest_size=2).digest()
    return int.from_bytes(digest) % BUCKET_SHARDS


def _row_key(minute: int, shard: int) -> str:
    return f"{minute:010d}:{shard:02d}"


StoredBucket = tuple[Bucket, str | None, tuple[str, ...]]  # counts, ETag, the last batches it took in
REMEMBERED_BATCHES = 32
_NOTHING: StoredBucket = ({}, None, ())


class TableDetectionStore:
    """Azure Table Storage; every write is conditional, so instances share it safely."""

    def __init__(self, service: TableServiceClient, prefix: str = "bindwatch") -> None:
        self.table: TableClient = open_table(service, f"{prefix}detect")
        self.requests = 0  # storage requests made (the cost budget counts them)
        self.degraded = Degraded()
        self.newer: set[str] = set()  # "s" rows a newer release wrote, met since the last load_states: left alone
        self._newer_rules: set[str] = set()  # rules with any such memory row: none of their memory is used
        self._newer_buckets: set[str] = set()  # window rows a newer release wrote, met by the last read

    # --- window buckets ---

    def merge_buckets(self, increments: Buckets, first: int, last: int, batch: str | None = None) -> Buckets:
        """Add the increments; a row that already took `batch` in (a rerun of it) does not add it twice."""
        pending = _split(increments)
        low = min([first, *increments])
        high = max([last, *increments])
        for _ in range(RETRIES):
            stored = self._read_buckets(low, high)
            for row in [r for r in pending if batch and _took_in(stored, r, batch)]:
                del pending[row]
            for row in [r for r in pending if r in self._newer_buckets]:  # never overwritten; not counted here
                self.degraded.note("bucket_refused", sum(len(groups) for groups in pending.pop(row).values()))
            if pending:
                self._write_buckets(pending, stored, batch)
            if not pending:
                return _by_minute(stored, first, last)
        raise StateConflict("window buckets kept changing under concurrent writers")

    def _read_buckets(self, low: int, high: int) -> dict[str, StoredBucket]:
        query = "PartitionKey eq 'w' and RowKey ge @low and RowKey lt @high"
        params = {"low": _minute_key(low), "high": _minute_key(high + 1)}
        found: dict[str, StoredBucket] = {}
        newer: list[Any] = []
        pages = self.table.query_entities(query, parameters=params, results_per_page=1000).by_page()
        for page in pages:
            self.requests += 1
            for entity in page:
                if not DETECTION.readable(entity):
                    newer.append(entity)
                    continue
                DETECTION.read(entity)
                batches = tuple(json.loads(entity.get("batches") or "[]"))
                found[entity["RowKey"]] = (bucket_from_data(unpack(entity)), etag_of(entity), batches)
        self._newer_buckets = {entity["RowKey"] for entity in newer}
        if newer:
            log_refused(DETECTION, self.table.table_name, newer, LEFT["window"])
        return found

    def _submit(self, chunk: list[tuple[Any, tuple[Any, ...], Any]]) -> Any:
        """One entity group transaction; None when another writer got there first (re-read and try again)."""
        self.requests += 1
        try:
            return self.table.submit_transaction([operation for _, operation, _ in chunk])
        except HttpResponseError as error:
            if not is_conflict(error):
                raise
            return None

    def _write_buckets(self, pending: dict[str, Bucket], stored: dict[str, StoredBucket], batch: str | None) -> None:
        """Write what it can; rows written are removed from `pending` and updated in `stored`."""
        rows = [(row, *self._bucket_row(row, pending[row], stored.get(row), batch)) for row in pending]
        for chunk in _chunks(rows):
            results = self._submit(chunk)
            if results is None:
                return  # re-read and re-merge what is left
            for (row, _, merged), result in zip(chunk, results, strict=True):
                known = stored.get(row)
                stored[row] = (merged, result.get("etag"), _remembered(known, batch))
                del pending[row]

    def _bucket_row(
        self, row: str, increment: Bucket, stored: StoredBucket | None, batch: str | None
    ) -> tuple[tuple[Any, ...], Bucket]:
        merged: Bucket = bucket_from_data(_bucket_data(stored[0])) if stored else {}
        merge_bucket(merged, increment)
        body = self._fitted(merged)
        batches = json.dumps(list(_remembered(stored, batch)))
        entity = DETECTION.mark({"PartitionKey": "w", "RowKey": row, **body, "batches": batches})
        if stored is None:
            return ("create", entity), merged
        options = {"mode": UpdateMode.REPLACE, "etag": stored[1], "match_condition": MatchConditions.IfNotModified}
        return ("update", entity, options), merged

    def _fitted(self, bucket: Bucket) -> dict[str, Any]:
        """The row's body within ROW_CHARS: detail goes first, then whole groups (each loss counted)."""
        for step, (top, examples) in enumerate(((10, 3), (3, 1), (0, 0))):
            text = _text(bucket, top, examples)
            if len(text) <= ROW_CHARS:
                if step:
                    self.degraded.note("bucket_detail", 1, level=step)
                return pack_text(text)
        text, dropped = _shed(bucket)
        self.degraded.note("bucket_detail", 1, level=3)
        self.degraded.note("bucket_groups", dropped)
        return pack_text(text)

    def prune(self, before: int) -> int:
        """Old window buckets, and alert states and incidents that stopped being live a week ago (rows a newer
        release wrote are left to it)."""
        keys = self._keys("PartitionKey eq 'w' and RowKey lt @before", {"before": _minute_key(before)})
        cutoff = datetime.now(UTC) - STATE_RETENTION
        keys += self._keys("PartitionKey eq 's' and Live eq false and Timestamp lt @cutoff", {"cutoff": cutoff})
        for start in range(0, len(keys), MAX_OPS):
            chunk = keys[start : start + MAX_OPS]
            for partition in {p for p, _ in chunk}:
                self.requests += 1
                rows = [("delete", {"PartitionKey": p, "RowKey": r}) for p, r in chunk if p == partition]
                self.table.submit_transaction(rows)
        return len(keys)

    def _keys(self, query: str, parameters: dict[str, Any]) -> list[tuple[str, str]]:
        """The keys of the rows this release may delete: a newer release's rows are named in one log line."""
        select = ["PartitionKey", "RowKey", SCHEMA]
        pages = self.table.query_entities(query, parameters=parameters, select=select).by_page()
        keys, newer = [], []
        for page in pages:
            self.requests += 1
            for entity in page:
                if DETECTION.readable(entity):  # only the mark is selected: nothing to upgrade
                    keys.append((entity["PartitionKey"], entity["RowKey"]))
                else:
                    newer.append(entity)
        if newer:
            log_refused(DETECTION, self.table.table_name, newer, LEFT["prune"])
        return keys

    # --- rule memory, alert states and incidents ---

    def load_states(self) -> DetectionState:
        """What is live, without the rows a newer release wrote (one log line per kind of row), and without any
        memory of a rule that has such a row: half a rule's memory would be misread as the whole."""
        state = DetectionState()
        rows: list[Any] = []
        newer: dict[str, list[Any]] = {}
        pages = self.table.query_entities("PartitionKey eq 's' and Live eq true", results_per_page=1000).by_page()
        for page in pages:
            self.requests += 1
            for entity in page:
                if DETECTION.readable(entity):
                    rows.append(DETECTION.read(entity))
                else:
                    newer.setdefault(_kind(entity["RowKey"]), []).append(entity)
        self.newer = {entity["RowKey"] for found in newer.values() for entity in found}
        self._newer_rules = {_rule_of(key) for key in self.newer if _kind(key) == "memory"}
        for kind, found in newer.items():
            log_refused(DETECTION, self.table.table_name, found, LEFT[kind])
        for entity in rows:
            key: str = entity["RowKey"]
            if _kind(key) == "memory" and _rule_of(key) in self._newer_rules:
                continue
            data, etag = unpack(entity), etag_of(entity)
            if key.startswith("r:"):
                state.rules[key[2:]] = RuleState.from_data(data, etag)
            elif key.startswith("m:"):
                memory = GroupMemory.from_data(data, etag)
                state.memory[memory.rule, memory.shard] = memory
            elif key.startswith("i:"):
                state.incidents[key[2:]] = IncidentState.from_data(data, etag)
            else:
                state.alerts[key[2:]] = AlertState.from_data(data, etag)
        return state

    def save_rule(self, state: RuleState) -> bool:
        """False on a conflict, and for a rule whose memory a newer release wrote (not written)."""
        if state.name in self._newer_rules:
            return False
        return _stamp(state, self._save(_rule_row(state), pack(state.to_data()), True, state.etag))

    def load_rule(self, name: str) -> RuleState | None:
        """None when absent, or when a newer release wrote it (then the rule's memory is left alone)."""
        entity = self._read_memory("r:" + name, name)
        return RuleState.from_data(unpack(entity), etag_of(entity)) if entity is not None else None

    def save_memory(
        self, shards: Sequence[GroupMemory], rules: Sequence[RuleState] = ()
    ) -> list[GroupMemory | RuleState]:
        """Rule rows and shards in one transaction (chunked); a chunk that conflicts is written row by row to find
        out which lost. A rule whose memory a newer release wrote is not written, and not lost either: this release
        leaves it to that one."""
        rules = [r for r in rules if r.name not in self._newer_rules]
        shards = [s for s in shards if s.rule not in self._newer_rules]
        lost: list[GroupMemory | RuleState] = []
        rows = [(r, self._operation(_rule_row(r), pack(r.to_data()), True, r.etag), None) for r in rules]
        rows += [(s, self._operation(_memory_row(s), pack(s.to_data()), True, s.etag), None) for s in shards]
        for chunk in _chunks(rows):
            results = self._submit(chunk)
            if results is None:
                lost += [item for item, _, _ in chunk if not self._save_one(item)]
                continue
            for (item, _, _), result in zip(chunk, results, strict=True):
                item.etag = result.get("etag")
        return lost

    def _save_one(self, item: GroupMemory | RuleState) -> bool:
        if isinstance(item, RuleState):
            return self.save_rule(item)
        return _stamp(item, self._save(_memory_row(item), pack(item.to_data()), True, item.etag))

    def load_memory(self, rule: str, shard: int) -> GroupMemory | None:
        """None when absent, or when a newer release wrote it (then the rule's memory is left alone)."""
        entity = self._read_memory(_memory_row(GroupMemory(rule, shard)), rule)
        return GroupMemory.from_data(unpack(entity), etag_of(entity)) if entity is not None else None

    def _read_memory(self, row: str, rule: str) -> Any:
        """A rule or shard row; None when absent or newer (then none of the rule's memory is written)."""
        try:
            return self._read(row, "memory")
        except Refused:
            self._newer_rules.add(rule)
            return None

    def save_alert(self, state: AlertState) -> bool:
        """False on a conflict, and for an alert a newer release wrote (not written)."""
        if "a:" + state.fingerprint in self.newer:
            return False
        return _stamp(state, self._save("a:" + state.fingerprint, pack(state.to_data()), state.live, state.etag))

    def load_alert(self, fingerprint: str) -> AlertState | None:
        """Refused (after its log line) when a newer release wrote it: deciding it here could decide it twice."""
        entity = self._read("a:" + fingerprint, "alert")
        return AlertState.from_data(unpack(entity), etag_of(entity)) if entity is not None else None

    def save_incident(self, state: IncidentState) -> bool:
        """False on a conflict, and for an incident a newer release wrote (not written)."""
        if "i:" + state.id in self.newer:
            return False
        return _stamp(state, self._save("i:" + state.id, self._incident_body(state), state.live, state.etag))

    def _incident_body(self, state: IncidentState) -> dict[str, Any]:
        """An incident that would not fit one row keeps its alerts' decisions only for the first ones."""
        data = state.to_data()
        try:
            return pack(data)
        except TooLarge:
            shown = [m for m in data["members"].values() if m["alert"] is not None]
            for member in shown[1:]:
                member["alert"] = None
            self.degraded.note("incident_detail", len(shown) - 1, incident=state.id)
            return pack(data)

    def load_incident(self, incident: str) -> IncidentState | None:
        """None when absent, or when a newer release wrote it (gone, for this release)."""
        try:
            entity = self._read("i:" + incident, "incident")
        except Refused:
            return None
        return IncidentState.from_data(unpack(entity), etag_of(entity)) if entity is not None else None

    def _read(self, row: str, kind: str) -> Any:
        """The "s" row read (upgraded), or None; Refused after its log line when a newer release wrote it."""
        entity = self._get(row)
        if entity is None:
            return None
        try:
            return read_row(DETECTION, entity, self.table.table_name, LEFT[kind])
        except Refused:
            self.newer.add(row)
            raise

    def _get(self, row: str) -> Any:
        self.requests += 1
        try:
            return self.table.get_entity("s", row)
        except HttpResponseError as error:
            if error.status_code == 404:
                return None
            raise

    def _operation(self, row: str, body: dict[str, Any], live: bool, etag: str | None) -> tuple[Any, ...]:
        entity = DETECTION.mark({"PartitionKey": "s", "RowKey": row, "Live": live, **body})
        if etag is None:
            return ("create", entity)
        return ("update", entity, {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": _IF_UNCHANGED})

    def _save(self, row: str, body: dict[str, Any], live: bool, etag: str | None) -> str | None:
        entity = DETECTION.mark({"PartitionKey": "s", "RowKey": row, "Live": live, **body})
        self.requests += 1
        try:
            if etag is None:
                result = self.table.create_entity(entity)
            else:
                result = self.table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=_IF_UNCHANGED
                )
        except HttpResponseError as error:
            if is_conflict(error):
                return None
            raise
        return result.get("etag")


_IF_UNCHANGED = MatchConditions.IfNotModified


def _stamp(state: Any, etag: str | None) -> bool:
    if etag is None:
        return False
    state.etag = etag
    return True


def _rule_row(state: RuleState) -> str:
    return "r:" + state.name


def _kind(row: str) -> str:
    """What an "s" row holds, by its key."""
    return {"r": "memory", "m": "memory", "i": "incident"}.get(row[:1], "alert")


def _rule_of(row: str) -> str:
    """The rule a memory row belongs to: "r:<rule>" or "m:<rule>:<shard>"."""
    return row[2:] if row.startswith("r:") else row[2:].rsplit(":", 1)[0]


def _memory_row(shard: GroupMemory) -> str:
    return f"m:{shard.rule}:{shard.shard:02d}"


def _split(increments: Buckets) -> dict[str, Bucket]:
    """A batch's increments by row: minute and shard."""
    rows: dict[str, Bucket] = {}
    for minute, bucket in increments.items():
        for rule, groups in bucket.items():
            for key, counts in groups.items():
                row = rows.setdefault(_row_key(minute, bucket_shard(rule, key)), {})
                row.setdefault(rule, {})[key] = counts
    return rows


def _by_minute(stored: dict[str, StoredBucket], first: int, last: int) -> Buckets:
    """Rows back into minutes (rows written before sharding, keyed by the minute alone, add in too)."""
    buckets: Buckets = {}
    for row, (bucket, _, _) in stored.items():
        minute = int(row[:10])
        if first <= minute <= last:
            merge_bucket(buckets.setdefault(minute, {}), bucket)
    return buckets


def _took_in(stored: dict[str, StoredBucket], row: str, batch: str) -> bool:
    """The row took the batch in already, or its minute's row from before sharding did (the batch ran on the older
    release, and is redelivered to this one: it counts once)."""
    return batch in stored.get(row, _NOTHING)[2] or batch in stored.get(row[:10], _NOTHING)[2]


def _remembered(stored: StoredBucket | None, batch: str | None) -> tuple[str, ...]:
    """The last batches a row took in, so a rerun of one of them is recognised (bounded)."""
    known = stored[2] if stored else ()
    return (*known, batch)[-REMEMBERED_BATCHES:] if batch else known


def _bucket_data(bucket: Bucket, top: int = 10, examples: int = 3) -> dict[str, dict[str, list[Any]]]:
    return {rule: {key: c.to_data(top, examples) for key, c in groups.items()} for rule, groups in bucket.items()}


def _text(bucket: Bucket, top: int, examples: int) -> str:
    return json.dumps(_bucket_data(bucket, top, examples), separators=(",", ":"), ensure_ascii=False)


def _shed(bucket: Bucket) -> tuple[str, int]:
    """Counts only, groups with unbound sign-ins first (they are what can alert), the busiest first, until the
    row is full; returns the text and how many groups were dropped."""
    entries = [(rule, key, c) for rule, groups in bucket.items() for key, c in groups.items()]
    entries.sort(key=lambda e: (e[2].unbound == 0, -e[2].unbound, -e[2].judged))
    kept: dict[str, dict[str, list[Any]]] = {}
    used = 2
    for rule, key, counts in entries:
        item = json.dumps({key: counts.to_data(0, 0)}, separators=(",", ":"), ensure_ascii=False)
        cost = len(item) + len(rule) + 6
        if used + cost > ROW_CHARS:
            continue
        kept.setdefault(rule, {})[key] = counts.to_data(0, 0)
        used += cost
    dropped = len(entries) - sum(len(groups) for groups in kept.values())
    return json.dumps(kept, separators=(",", ":"), ensure_ascii=False), dropped


def _chunks(rows: list[tuple[Any, tuple[Any, ...], Any]]) -> Iterator[list[tuple[Any, tuple[Any, ...], Any]]]:
    """Transactions of at most 100 operations and TRANSACTION_CHARS characters of rows."""
    chunk: list[tuple[Any, tuple[Any, ...], Any]] = []
    size = 0
    for row in rows:
        entity = row[1][1]
        cost = sum(len(v) for v in entity.values() if isinstance(v, str))
        if chunk and (len(chunk) >= MAX_OPS or size + cost > TRANSACTION_CHARS):
            yield chunk
            chunk, size = [], 0
        chunk.append(row)
        size += cost
    if chunk:
        yield chunk
