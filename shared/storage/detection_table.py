"""Window counts, rule memory and alert states in Azure Table Storage; every write conditional.

Table layout (one table, `<prefix>detect`):
- window buckets: PartitionKey "w", RowKey the minute (10 digits); one entity holds every rule's groups for
  that minute, as JSON split over string properties (d0, d1, ...);
- rule memory and alert states: PartitionKey "s", RowKey "r:<rule>" / "a:<fingerprint>", `Live` true while
  they need loading, JSON in d0, d1, ...

Per batch that is 1 query + 1 entity-group transaction for the buckets (more only on a conflict or when a
batch touches over 100 minutes), 1 query for the states, and a write per alert decision or rule-memory change.
"""

from __future__ import annotations

import json
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from shared.detect.lifecycle import AlertState
from shared.detect.memory import RuleState
from shared.detect.state import StateConflict
from shared.detect.window import Bucket, Buckets, bucket_from_data, bucket_to_data, merge_bucket, strip_details

from .entity import MAX_OPS, TooLarge, etag_of, is_conflict, open_table, pack_text, unpack_text

RETRIES = 8


def pack(data: Any) -> dict[str, Any]:
    """JSON over as many string properties as it needs (TooLarge when it cannot fit one entity)."""
    return pack_text(json.dumps(data, separators=(",", ":"), ensure_ascii=False))


def unpack(entity: dict[str, Any]) -> Any:
    return json.loads(unpack_text(entity))


def _minute_key(minute: int) -> str:
    return f"{minute:010d}"


StoredBucket = tuple[Bucket, str | None, tuple[str, ...]]  # counts, ETag, the last batches it took in
REMEMBERED_BATCHES = 32
_NOTHING: StoredBucket = ({}, None, ())


class TableDetectionStore:
    """Azure Table Storage; every write is conditional, so instances share it safely."""

    def __init__(self, service: TableServiceClient, prefix: str = "bindwatch") -> None:
        self.table: TableClient = open_table(service, f"{prefix}detect")
        self.requests = 0  # storage requests made (the cost budget counts them)

    # --- window buckets ---

    def merge_buckets(self, increments: Buckets, first: int, last: int, batch: str | None = None) -> Buckets:
        """Add the increments; a minute that already took `batch` in (a rerun of it) does not add it twice."""
        pending = dict(increments)
        low = min([first, *pending])
        high = max([last, *pending])
        for _ in range(RETRIES):
            stored = self._read_buckets(low, high)
            for minute in [m for m in pending if batch and batch in stored.get(m, _NOTHING)[2]]:
                del pending[minute]
            if not pending:
                return {m: b for m, (b, _, _) in stored.items() if first <= m <= last}
            self._write_buckets(pending, stored, batch)
            if not pending:
                return {m: b for m, (b, _, _) in stored.items() if first <= m <= last}
        raise StateConflict("window buckets kept changing under concurrent writers")

    def _read_buckets(self, low: int, high: int) -> dict[int, StoredBucket]:
        query = "PartitionKey eq 'w' and RowKey ge @low and RowKey le @high"
        params = {"low": _minute_key(low), "high": _minute_key(high)}
        found: dict[int, StoredBucket] = {}
        pages = self.table.query_entities(query, parameters=params, results_per_page=1000).by_page()
        for page in pages:
            self.requests += 1
            for entity in page:
                batches = tuple(json.loads(entity.get("batches") or "[]"))
                found[int(entity["RowKey"])] = (bucket_from_data(unpack(entity)), etag_of(entity), batches)
        return found

    def _write_buckets(self, pending: Buckets, stored: dict[int, StoredBucket], batch: str | None) -> None:
        """Write what it can; minutes written are removed from `pending` and updated in `stored`."""
        minutes = sorted(pending)
        for start in range(0, len(minutes), MAX_OPS):
            chunk = minutes[start : start + MAX_OPS]
            merged = {m: _merged(stored.get(m), pending[m]) for m in chunk}
            batches = {m: _remembered(stored.get(m), batch) for m in chunk}
            operations = [_bucket_operation(m, merged[m], stored.get(m), batches[m]) for m in chunk]
            try:
                self.requests += 1
                results = self.table.submit_transaction(operations)
            except HttpResponseError as error:
                if not is_conflict(error):
                    raise
                return  # re-read and re-merge what is left
            for minute, result in zip(chunk, results, strict=True):
                stored[minute] = (merged[minute], result.get("etag"), batches[minute])
                del pending[minute]

    def prune(self, before: int) -> int:
        query = "PartitionKey eq 'w' and RowKey lt @before"
        pages = self.table.query_entities(
            query, parameters={"before": _minute_key(before)}, select=["PartitionKey", "RowKey"]
        ).by_page()
        keys = []
        for page in pages:
            self.requests += 1
            keys += [entity["RowKey"] for entity in page]
        for start in range(0, len(keys), MAX_OPS):
            self.requests += 1
            self.table.submit_transaction(
                [("delete", {"PartitionKey": "w", "RowKey": k}) for k in keys[start : start + MAX_OPS]]
            )
        return len(keys)

    # --- rule memory and alert states ---

    def load_states(self) -> tuple[dict[str, RuleState], dict[str, AlertState]]:
        rules: dict[str, RuleState] = {}
        alerts: dict[str, AlertState] = {}
        pages = self.table.query_entities("PartitionKey eq 's' and Live eq true", results_per_page=1000).by_page()
        for page in pages:
            self.requests += 1
            for entity in page:
                key: str = entity["RowKey"]
                if key.startswith("r:"):
                    rules[key[2:]] = RuleState.from_data(unpack(entity), etag_of(entity))
                else:
                    alerts[key[2:]] = AlertState.from_data(unpack(entity), etag_of(entity))
        return rules, alerts

    def save_rule(self, state: RuleState) -> bool:
        etag = self._save("r:" + state.name, state.to_data(), True, state.etag)
        if etag is None:
            return False
        state.etag = etag
        return True

    def load_rule(self, name: str) -> RuleState | None:
        entity = self._get("r:" + name)
        return RuleState.from_data(unpack(entity), etag_of(entity)) if entity is not None else None

    def save_alert(self, state: AlertState) -> bool:
        etag = self._save("a:" + state.fingerprint, state.to_data(), state.live, state.etag)
        if etag is None:
            return False
        state.etag = etag
        return True

    def load_alert(self, fingerprint: str) -> AlertState | None:
        entity = self._get("a:" + fingerprint)
        return AlertState.from_data(unpack(entity), etag_of(entity)) if entity is not None else None

    def _get(self, row: str) -> Any:
        self.requests += 1
        try:
            return self.table.get_entity("s", row)
        except HttpResponseError as error:
            if error.status_code == 404:
                return None
            raise

    def _save(self, row: str, data: Any, live: bool, etag: str | None) -> str | None:
        entity = {"PartitionKey": "s", "RowKey": row, "Live": live, **pack(data)}
        self.requests += 1
        try:
            if etag is None:
                result = self.table.create_entity(entity)
            else:
                result = self.table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except HttpResponseError as error:
            if is_conflict(error):
                return None
            raise
        return result.get("etag")


def _remembered(stored: StoredBucket | None, batch: str | None) -> tuple[str, ...]:
    """The last batches a minute took in, so a rerun of one of them is recognised (bounded)."""
    known = stored[2] if stored else ()
    return (*known, batch)[-REMEMBERED_BATCHES:] if batch else known


def _merged(stored: StoredBucket | None, increment: Bucket) -> Bucket:
    bucket = bucket_from_data(bucket_to_data(stored[0])) if stored else {}
    merge_bucket(bucket, increment)
    return bucket


def _bucket_operation(
    minute: int, bucket: Bucket, stored: StoredBucket | None, batches: tuple[str, ...]
) -> tuple[Any, ...]:
    try:
        body = pack(bucket_to_data(bucket))
    except TooLarge:
        body = pack(bucket_to_data(strip_details(bucket)))  # keep the counts; lose the top lists of this minute
    entity = {"PartitionKey": "w", "RowKey": _minute_key(minute), **body, "batches": json.dumps(list(batches))}
    if stored is None:
        return ("create", entity)
    options = {"mode": UpdateMode.REPLACE, "etag": stored[1], "match_condition": MatchConditions.IfNotModified}
    return ("update", entity, options)
