"""`make bench` (`python -m bench.bench`): bindwatch's speed and cost against the limit, side by side in one run.

The limit is decoding the JSON at all. On the same bytes, in one run:
  (a) json.loads of each body and a walk over its records
  (b) the same with orjson.loads
  (c) the whole pipeline as the function runs it, with the in-memory store
  (d) the same with the Table store on Azurite, counting storage requests per 1,000 records
and then the memory per open sign-in with 100,000 open sign-ins, and the latency of a 100-record batch.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import timedelta

import orjson
from azure.data.tables import TableServiceClient

from shared.app import compose
from shared.core.message import Message, Origin
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.settings import load_settings
from shared.storage.detection_table import TableDetectionStore
from shared.storage.signin_table import TableStore
from shared.synth.records import BASE_TIME, body
from shared.synth.traffic import Traffic
from tests.support import azurite
from tests.support.state import Counter

RECORDS_PER_BODY = 80
BODIES_PER_INVOCATION = 10


def make_bodies(records: int, seed: int = 3) -> list[bytes]:
    """Deterministic realistic traffic: ~10 KB records with ~30 CA policies, 1-4 requests per sign-in."""
    traffic = Traffic(seed=seed, users=5000, fillers=29)
    rng = random.Random(seed)
    out: list[dict] = []
    at = BASE_TIME
    while len(out) < records:
        at += timedelta(seconds=rng.expovariate(20.0))
        out.extend(traffic.signin(at))
    out = out[:records]
    return [body(out[i : i + RECORDS_PER_BODY]) for i in range(0, len(out), RECORDS_PER_BODY)]


def walk(document: dict) -> int:
    """What any reader must do at least: reach each record's properties."""
    count = 0
    for record in document["records"]:
        if record.get("category") and isinstance(record.get("properties"), dict):
            count += 1
    return count


def best_of(runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def invocations(bodies: list[bytes]) -> list[list[Message]]:
    messages = [Message(b, Origin(source="bench", partition="0", offset=str(i))) for i, b in enumerate(bodies)]
    return [messages[i : i + BODIES_PER_INVOCATION] for i in range(0, len(messages), BODIES_PER_INVOCATION)]


def run_pipeline(pipeline_factory: Callable[[], Pipeline], batches: list[list[Message]]) -> None:
    pipeline = pipeline_factory()
    for batch in batches:
        pipeline.ingest(batch)
    pipeline.drain()


def memory_pipeline() -> Pipeline:
    """As the function composes it (rules from rules.toml included), with everything kept in memory."""
    return compose.replay_pipeline(load_settings(), MemoryStore(), 600.0)


def table_run(batches: list[list[Message]], records: int) -> tuple[float, float]:
    """(d): the same pipeline on Azurite tables; records/s and storage requests per 1,000 records."""
    server = azurite.start()
    try:
        counter = Counter()
        service = TableServiceClient.from_connection_string(server.connection_string, transport=counter)
        store = TableStore(service, prefix="bench").ensure()
        detector = compose.detector(load_settings(), TableDetectionStore(service, "bench"))
        pipeline = Pipeline(store, 600.0, observers=[detector])
        pipeline.ingest([])  # create the detection tables before counting
        counter.requests.clear()
        start = time.perf_counter()
        for batch in batches:
            pipeline.ingest(batch)
        elapsed = time.perf_counter() - start
        return records / elapsed, 1000.0 * counter.count / records
    finally:
        server.stop()


def memory_per_open_signin(count: int) -> tuple[float, int]:
    """Bytes held by the in-memory store per open sign-in (tracemalloc), fed in chunks as a stream would be."""
    traffic = Traffic(seed=9, users=5000, fillers=0)
    store = MemoryStore()
    pipeline = Pipeline(store, settle_seconds=10**9)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    at = BASE_TIME
    while store.open_count() < count:
        records: list[dict] = []
        while len(records) < 500:
            at += timedelta(milliseconds=50)
            records.extend(traffic.signin(at))
        pipeline.ingest([Message(body(records))])
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / store.open_count(), store.open_count()


def traced_peak_mb(batches: list[list[Message]]) -> float:
    """Peak Python memory while (c) runs, input bytes excluded."""
    gc.collect()
    tracemalloc.start()
    run_pipeline(memory_pipeline, batches)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def batch_latency_ms(bodies: list[bytes]) -> float:
    """Median time to judge a 100-record batch and evaluate its rules, in-memory store."""
    records = [r for b in bodies[:20] for r in orjson.loads(b)["records"]]
    batches = [body(records[i : i + 100]) for i in range(0, len(records) - 99, 100)]
    pipeline = memory_pipeline()
    times = []
    for b in batches:
        start = time.perf_counter()
        pipeline.ingest([Message(b)])
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=8000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--open-signins", type=int, default=100_000)
    args = parser.parse_args()

    bodies = make_bodies(args.records)
    records = sum(len(orjson.loads(b)["records"]) for b in bodies)
    size = sum(len(b) for b in bodies) / records
    batches = invocations(bodies)
    a = best_of(args.runs, lambda: [walk(json.loads(b)) for b in bodies])
    b = best_of(args.runs, lambda: [walk(orjson.loads(x)) for x in bodies])
    c = best_of(args.runs, lambda: run_pipeline(memory_pipeline, batches))
    d_rate, d_requests = table_run(batches, records)
    peak = traced_peak_mb(batches)
    per_signin, open_signins = memory_per_open_signin(args.open_signins)
    latency = batch_latency_ms(bodies)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}")
    print(f"input: {records} records in {len(bodies)} bodies, {size / 1024:.1f} KB a record")
    print(f"(a) json.loads + walk      {records / a:>10,.0f} records/s")
    print(f"(b) orjson.loads + walk    {records / b:>10,.0f} records/s")
    print(f"(c) pipeline, memory store {records / c:>10,.0f} records/s   (c)/(b) = {b / c:.2f}  (target >= 0.8)")
    print(
        f"(d) pipeline, Table store  {d_rate:>10,.0f} records/s   {d_requests:.0f} storage requests per 1,000 records"
        " (target <= 150)"
    )
    print(f"memory per open sign-in    {per_signin:>10,.0f} bytes with {open_signins:,} open (target < 1024)")
    print(f"100-record batch           {latency:>10.1f} ms median, in-memory store (target < 50)")
    print(f"peak memory, (c) run       {peak:>10,.0f} MB traced by tracemalloc (process RSS peak {peak_mb:,.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
