"""Run-time silences in Table Storage (`<prefix>silences`): every instance reads the same ones.

One row per silence, PartitionKey "silence", RowKey its id; the matchers as JSON. Expiring a silence moves its end
to now (If-Match, so two on-call engineers expiring at once cannot lose a change) and keeps the row, so
`silence list --all` still shows who silenced what and who ended it. Rows whose end is more than
`RETENTION_SECONDS` past are deleted when silences are listed.
"""

from __future__ import annotations

import json
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient, UpdateMode

from shared.core.schema import Schema
from shared.detect.silence import RuntimeSilence, ended

from .entity import etag_of, is_conflict, open_table, read_row, readable_rows

# Version 1: the rows as this module first wrote them.
SILENCES = Schema("silences", 1)
PARTITION = "silence"
RETENTION_SECONDS = 30 * 86400.0  # an ended silence stays listed this long (who muted what, during an incident)
LEFT = "not honoured by this release"


class TableSilences:
    """The `SilenceStore` of a deployment."""

    def __init__(self, service: TableServiceClient, prefix: str) -> None:
        self.table = open_table(service, f"{prefix}silences")

    def add(self, silence: RuntimeSilence) -> None:
        self.table.create_entity(to_entity(silence))

    def silences(self) -> list[RuntimeSilence]:
        rows = self.table.query_entities("PartitionKey eq @p", parameters={"p": PARTITION})
        return [from_entity(row) for row in readable_rows(SILENCES, rows, self.table.table_name, LEFT)]

    def expire(self, silence_id: str, at: float, by: str) -> RuntimeSilence | None:
        for _ in range(5):
            try:
                row = self.table.get_entity(PARTITION, silence_id)
            except ResourceNotFoundError:
                return None
            silence = ended(from_entity(read_row(SILENCES, row, self.table.table_name, LEFT)), at, by)
            try:
                self.table.update_entity(
                    to_entity(silence),
                    mode=UpdateMode.REPLACE,
                    etag=etag_of(row),
                    match_condition=MatchConditions.IfNotModified,
                )
                return silence
            except Exception as error:
                if not is_conflict(error):
                    raise
        raise RuntimeError(f"silence {silence_id} kept changing while it was expired")

    def forget_ended(self, now: float) -> int:
        """Delete silences that ended more than RETENTION_SECONDS ago; returns how many."""
        old = [s for s in self.silences() if s.ends_at < now - RETENTION_SECONDS]
        for silence in old:
            self.table.delete_entity(PARTITION, silence.id)
        return len(old)


def to_entity(silence: RuntimeSilence) -> dict[str, Any]:
    return SILENCES.mark(
        {
            "PartitionKey": PARTITION,
            "RowKey": silence.id,
            "Match": json.dumps({name: list(values) for name, values in silence.match.items()}),
            "StartsAt": silence.starts_at,
            "EndsAt": silence.ends_at,
            "Author": silence.author,
            "Reason": silence.reason,
            "ExpiredBy": silence.expired_by,
        }
    )


def from_entity(row: Any) -> RuntimeSilence:
    match = json.loads(row["Match"])
    return RuntimeSilence(
        id=row["RowKey"],
        match={str(name): tuple(str(v) for v in values) for name, values in match.items()},
        starts_at=float(row["StartsAt"]),
        ends_at=float(row["EndsAt"]),
        author=str(row["Author"]),
        reason=str(row["Reason"]),
        expired_by=str(row.get("ExpiredBy", "")),
    )
