"""The guardrail's state in Table Storage (`<prefix>guardrail`): policy changes, hourly counts, watches.

One partition (the rows are few: a change per token protection policy save, a row per policy, a watch per switch),
so one query loads a batch's state. RowKeys are hashes (an audit id or a policy name may hold characters a key
cannot). A change is inserted once (a redelivered audit record finds its row); counts and watches are written
with If-Match on the ETag read, and a new one only if absent, so instances sharing the table agree. An ended
watch is deleted once its last decision is older than what a batch loads; changes stay (one small row per save)
and only the recent ones are read.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, UpdateMode

from shared.core.policy_change import PolicyChange
from shared.core.schema import Schema
from shared.detect.guardrail_store import GuardrailState
from shared.detect.prediction import PolicyHours
from shared.detect.watch import Watch

from .entity import etag_of, is_conflict, open_table, pack_text, read_row, readable_rows, unpack_text

# Version 1: the rows as this module first wrote them.
GUARDRAIL = Schema("guardrail", 1)
PARTITION = "guardrail"
LEFT = "not counted or judged by this release"


class TableGuardrail:
    """The `GuardrailStore` of a deployment."""

    def __init__(self, service: TableServiceClient, prefix: str) -> None:
        self.table = open_table(service, f"{prefix}guardrail")

    def load(self, since: float) -> GuardrailState:
        rows = self.table.query_entities(
            "PartitionKey eq @p and ( Kind ne 'change' or At ge @since )", parameters={"p": PARTITION, "since": since}
        )
        state = GuardrailState()
        for row in readable_rows(GUARDRAIL, rows, self.table.table_name, LEFT):
            self._take(row, state, since)
        state.changes.sort(key=lambda c: (c.at, c.id))
        return state

    def _take(self, row: Any, state: GuardrailState, since: float) -> None:
        data = orjson.loads(unpack_text(row))
        kind = row["Kind"]
        if kind == "change":
            state.changes.append(PolicyChange.from_line(data))
        elif kind == "policy":
            hours = PolicyHours.from_data(data, etag_of(row))
            state.policies[hours.key] = hours
        elif kind == "watch":
            watch = Watch.from_data(data, etag_of(row))
            if watch.live or (watch.decided_at or watch.ends) >= since:
                state.watches[watch.id] = watch
            else:
                self._forget(row)

    def changes(self, since: float) -> list[PolicyChange]:
        """The changes made since `since` (the readiness report's marks), oldest first; reads nothing else."""
        rows = self.table.query_entities(
            "PartitionKey eq @p and Kind eq 'change' and At ge @since", parameters={"p": PARTITION, "since": since}
        )
        found = [
            PolicyChange.from_line(orjson.loads(unpack_text(r)))
            for r in readable_rows(GUARDRAIL, rows, self.table.table_name, LEFT)
        ]
        return sorted(found, key=lambda c: (c.at, c.id))

    def add_change(self, change: PolicyChange) -> bool:
        entity = self._entity("change", change.id, change.line())
        try:
            self.table.create_entity({**entity, "At": change.at})
        except ResourceExistsError:
            return False
        return True

    def save_policy(self, hours: PolicyHours) -> bool:
        return self._save(hours, self._entity("policy", hours.key, hours.to_data()))

    def load_policy(self, key: str) -> PolicyHours | None:
        row = self._get("policy", key)
        return None if row is None else PolicyHours.from_data(orjson.loads(unpack_text(row)), etag_of(row))

    def save_watch(self, watch: Watch) -> bool:
        return self._save(watch, self._entity("watch", watch.id, watch.to_data()))

    def load_watch(self, watch_id: str) -> Watch | None:
        row = self._get("watch", watch_id)
        return None if row is None else Watch.from_data(orjson.loads(unpack_text(row)), etag_of(row))

    def _save(self, value: PolicyHours | Watch, entity: dict[str, Any]) -> bool:
        """Insert if absent (no etag) or replace if unchanged since read; the new ETag goes on `value`."""
        try:
            if value.etag is None:
                written = self.table.create_entity(entity)
            else:
                written = self.table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=value.etag, match_condition=MatchConditions.IfNotModified
                )
        except ResourceExistsError:
            return False
        except Exception as error:
            if is_conflict(error):
                return False
            raise
        value.etag = written.get("etag")
        return True

    def _get(self, kind: str, key: str) -> Any | None:
        try:
            row = self.table.get_entity(PARTITION, row_key(kind, key))
        except ResourceNotFoundError:
            return None
        return read_row(GUARDRAIL, row, self.table.table_name, LEFT)

    def _forget(self, row: Any) -> None:
        with contextlib.suppress(ResourceNotFoundError):  # another instance deleted it first
            self.table.delete_entity(PARTITION, row["RowKey"])

    @staticmethod
    def _entity(kind: str, key: str, data: dict[str, Any]) -> dict[str, Any]:
        text = orjson.dumps(data).decode()
        return GUARDRAIL.mark(
            {"PartitionKey": PARTITION, "RowKey": row_key(kind, key), "Kind": kind, **pack_text(text)}
        )


def row_key(kind: str, key: str) -> str:
    """A RowKey for any id or name: a hash, since keys may not hold '/', '\\', '#', '?' or control characters."""
    return f"{kind}:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()[:40]}"
