"""`make bench-storage` (`python -m bench.storage_size`): what bindwatch keeps per sign-in, as Table Storage bills it.

Runs realistic synthetic traffic (bench.bench's: ~10 KB records with ~30 CA policies, 1-4 requests per sign-in,
80 records a message, 10 messages an invocation, Event Hub coordinates so batch keys are kept as in Azure) through
the function's pipeline on the Table store (Azurite), lets every sign-in settle (what RETENTION_DAYS then keeps is
its `s|` row and its `f|` retention index), reads every row exactly as the service returns it (OData JSON) and sizes
it with the Table service's billing formula (Microsoft's Azure Storage team: 4 bytes + 2 x len(PartitionKey +
RowKey) + for each property 8 bytes + 2 x len(name) + the value: UTF-16 string 2 x len + 4, binary len + 4, Double
and Int64 8, Int32 4, Boolean 1). Then it runs retention over them, counting the requests it makes, and writes a few
notifications to the outbox to size those too.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
from collections import defaultdict
from typing import Any

from azure.data.tables import TableServiceClient

from bench.bench import BODIES_PER_INVOCATION, make_bodies
from shared.core.alert import Notification
from shared.core.message import Message, Origin
from shared.core.text import utf16_units
from shared.ingest.pipeline import Pipeline
from shared.notify.outbox import Entry
from shared.storage.outbox_table import TableOutbox
from shared.storage.signin_table import TableStore
from shared.synth.alerts import sample
from shared.synth.records import BASE_TIME
from tests.support import azurite
from tests.support.capture_rows import raw_rows
from tests.support.state import Counter

SETTLE = 600.0
FIXED = {"Edm.Double": 8, "Edm.Int64": 8, "Edm.DateTime": 8, "Edm.Guid": 16}


def value_size(value: Any, kind: str | None) -> int:
    """The bytes one property value is billed for, by its EDM type (JSON without a type is String, Int32,
    Double or Boolean, as the service infers it)."""
    if kind == "Edm.Binary":
        return len(base64.b64decode(value)) + 4
    if kind in FIXED:
        return FIXED[kind]
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 8
    return 2 * utf16_units(str(value)) + 4


def billed_size(row: dict[str, Any]) -> int:
    """One entity's billed size (the Timestamp is in the 4 bytes of overhead)."""
    size = 4 + 2 * (utf16_units(row["PartitionKey"]) + utf16_units(row["RowKey"]))
    for name, value in row.items():
        if name in ("PartitionKey", "RowKey", "Timestamp") or "@odata" in name or name.startswith("odata."):
            continue
        size += 8 + 2 * utf16_units(name) + value_size(value, row.get(f"{name}@odata.type"))
    return size


def kind_of(row: dict[str, Any]) -> str:
    return "clock" if row["PartitionKey"] == "meta" else row["RowKey"][:2]


def messages(records: int) -> tuple[list[list[Message]], int]:
    bodies = make_bodies(records)
    at = BASE_TIME.timestamp()
    stream = [Message(b, Origin("eventhub", "0", str(i * 1000), i, at + i)) for i, b in enumerate(bodies)]
    return [stream[i : i + BODIES_PER_INVOCATION] for i in range(0, len(stream), BODIES_PER_INVOCATION)], len(bodies)


def measure(records: int) -> dict[str, Any]:
    server = azurite.start()
    try:
        connection = server.connection_string
        store = TableStore(TableServiceClient.from_connection_string(connection), prefix="size").ensure()
        pipeline = Pipeline(store, SETTLE)
        batches, bodies = messages(records)
        for batch in batches:
            pipeline.ingest(batch)
        pipeline.drain()  # every sign-in final: what retention keeps
        rows = raw_rows(connection, "sizesignins")
        sizes: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            sizes[kind_of(row)].append(billed_size(row))
        signins = len(sizes["s|"])
        counter = Counter()
        expiring = TableStore(TableServiceClient.from_connection_string(connection, transport=counter), "size")
        expired = expiring.ensure().expire(float("inf"))
        outbox = TableOutbox(TableServiceClient.from_connection_string(connection), "size")
        for kind in ("spike", "threshold", "ratio", "new"):
            notification = Notification("teams", [sample(kind), sample(kind, "resolved")], BASE_TIME.timestamp())
            outbox.add(Entry("teams", notification, created=1.0, next_at=1.0, updated=1.0))
        notes = [billed_size(row) for row in raw_rows(connection, "sizeoutbox")]
    finally:
        server.stop()
    total = sum(sum(values) for values in sizes.values())
    return {
        "records": records,
        "messages": bodies,
        "signins": signins,
        "rows": {kind: {"count": len(v), "mean_bytes": round(statistics.mean(v))} for kind, v in sorted(sizes.items())},
        "bytes_per_signin": round(total / signins),
        "bytes_per_1000_records": round(1000 * total / records),
        "retention_requests": counter.count - 1,  # less the table creation of ensure()
        "expired": expired,
        "outbox_entry_mean_bytes": round(statistics.mean(notes)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000, help="sign-in log records to run through (20000)")
    args = parser.parse_args()
    print(json.dumps(measure(args.records), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
