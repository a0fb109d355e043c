"""`make bench-scale` (`python -m bench.scale`): N function instances on one Azurite, a hub's partitions split
between them, each driving the Event Hub function as the host does.

- One Azurite for the whole run; each N gets tables of its own (a fresh `STATE_TABLE_PREFIX`).
- The corpus is `bench/corpus.py`'s realistic traffic (~10 KB records, 30 CA policies, 1-4 requests a sign-in,
  8 % of sign-ins unbound), its records in event-time order as the diagnostic stream emits them (a sign-in's
  requests come seconds apart, between other sign-ins' records), 80 records an Event Hub event.
- Events are spread over `--partitions` partitions by a hash of their body, as a hub spreads events sent without
  a partition key: the requests of one sign-in land on different partitions. Each partition is delivered in
  order, `--batch` events an invocation, with its own sequence numbers and partition id.
- N instances (separate processes, spawned) each own a share of the partitions and call the blueprint's own
  function (`ingest_signins`) with `azure.functions.EventHubEvent` lists. The ingest service is the one the host
  builds: `compose.ingest_service(settings)` from the app settings (AzureWebJobsStorage pointing at Azurite). An
  instance with several partitions takes their batches in turn, one at a time (one worker thread).
- Redelivery: every `--redeliver-every`th batch of a partition runs again right after it succeeded, as the host
  runs a batch again after a failure or a restart before its checkpoint; a batch that raises is run again too.
- Counted in each instance, at the HTTP transport (every SDK client of the process goes through it): storage
  requests, and ETag conflicts: a conditional write that lost a race, answered 409 or 412 (404 for a write to a
  row another writer deleted), including the one failed operation an entity group transaction reports. The
  sign-in store's own `state_conflict` log lines are counted beside them.
- Exactness: after every instance stopped, one final drain (every open sign-in final), then the stored verdicts
  (correlation id -> verdict, enforcement, requests, unbound requests, status codes) and detection's window counts
  (judged and unbound sign-ins per minute, rule and group: what alerts are decided on) are compared with a clean
  replay of the same corpus in one process, in memory (`compose.replay_pipeline`), in the corpus's order.

The figures go to standard output and to docs/scale-figures.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

from shared.app import compose
from shared.core.message import Message
from shared.core.verdict import verdict_line
from shared.detect.window import Buckets
from shared.ingest.memory_store import MemoryStore
from shared.settings import load_settings
from shared.storage.account import table_service
from shared.storage.detection_table import TableDetectionStore
from shared.storage.signin_table import TableStore
from shared.synth.records import body
from tests.support import azurite

from .bench import machine
from .corpus import RECORDS_PER_BODY, Corpus, build, make_bodies

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "scale-figures.md"
SETTLE_MINUTES = 1.0  # the corpus spans minutes of event time: with the default 10, nothing would settle in the run
EVERY_MINUTE = 10**9  # a minute far past any event time: detection's windows are read whole
COMPARED = ("verdict", "enforcement", "requests", "unbound_requests", "status_codes")
RETRIES = 6  # the host's retry policy: a first run and 5 retries


# --- the corpus and the hub -------------------------------------------------------------------------------------


def scale_corpus(records: int, folder: Path, seed: int = 3) -> Corpus:
    """bench/corpus.py's main traffic (8 % of sign-ins unbound), re-cut in event-time order, 80 records an event."""
    generated = [r for b in make_bodies(records, seed=seed, unbound_share=0.08) for r in orjson.loads(b)["records"]]
    generated.sort(key=lambda r: r["properties"]["createdDateTime"])  # stable: a sign-in's requests keep order
    bodies = [body(generated[i : i + RECORDS_PER_BODY]) for i in range(0, len(generated), RECORDS_PER_BODY)]
    return build("scale", bodies, folder)


def partition_of(event: bytes, partitions: int) -> int:
    """Where a hub puts an event sent without a partition key: spread evenly, unrelated to what it holds."""
    return int.from_bytes(hashlib.blake2b(event, digest_size=4).digest()) % partitions


def split(bodies: list[bytes], partitions: int) -> list[list[bytes]]:
    """The events of each partition, in the order they were sent."""
    parts: list[list[bytes]] = [[] for _ in range(partitions)]
    for item in bodies:
        parts[partition_of(item, partitions)].append(item)
    return parts


def owned(instance: int, instances: int, partitions: int) -> list[int]:
    """The partitions an instance owns: an even share, as the host's partition balancing gives."""
    return [p for p in range(partitions) if p % instances == instance]


# --- counting at the transport ----------------------------------------------------------------------------------

_INNER_STATUS = re.compile(rb"^HTTP/1\.1 (\d{3})", re.MULTILINE)
_CONFLICTS = {404, 409, 412}


@dataclass
class Counts:
    """What one process's storage clients sent, and the conflicts among the answers, by table."""

    requests: int = 0
    kinds: Counter[str] = field(default_factory=Counter)  # query, read, transaction, write
    conflicts: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def clear(self) -> None:
        with self.lock:
            self.requests = 0
            self.kinds.clear()
            self.conflicts.clear()
            self.statuses.clear()

    def record(self, request: Any, response: Any) -> None:
        status = response.status_code
        conflict = None
        if request.url.endswith("$batch"):
            inner = [int(s) for s in _INNER_STATUS.findall(_content(response))]
            failed = [s for s in inner if s >= 300]
            if failed and failed[0] in _CONFLICTS:
                conflict = f"{_table_of(_text(request.data), request.url, batch=True)} {failed[0]}"
            status = failed[0] if failed else status
        elif _lost_race(request, status):
            conflict = f"{_table_of(_text(request.data), request.url)} {status}"
        with self.lock:
            self.requests += 1
            self.kinds[_kind(request)] += 1
            self.statuses[status] += 1
            if conflict is not None:
                self.conflicts[conflict] += 1


def _kind(request: Any) -> str:
    """A transaction ($batch), a query (a filter, or a whole table), a read of one row, or a write of one row."""
    if request.url.endswith("$batch"):
        return "transaction"
    if request.method == "GET":
        path = request.url.split("?")[0]
        return "read" if path.endswith(")") and "PartitionKey=" in path else "query"
    return "write"


def _content(response: Any) -> bytes:
    """A transaction's answer (its parts carry the statuses). The SDK asks for it streamed: reading it here keeps
    it for the SDK (a response reads its body once and keeps it)."""
    read = getattr(response, "read", None)
    return (read() if callable(read) else response.body()) or b""


def _lost_race(request: Any, status: int) -> bool:
    """A conditional write that lost: 409 (insert of a row that exists), 412 (its ETag changed), 404 (a write to a
    row another writer removed). `create table` answering 409 is every instance's normal start, not a race."""
    if status in (409, 412):
        return not _creates_table(request)
    return status == 404 and request.method in ("PUT", "MERGE", "PATCH", "DELETE")


def _text(data: Any) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data if isinstance(data, str) else ""


def _creates_table(request: Any) -> bool:
    """`create table` answering 409 (it exists already) is the normal start of every instance, not a race."""
    return request.method == "POST" and request.url.split("?")[0].rstrip("/").endswith("/Tables")


_META = re.compile(r"""PartitionKey"?\s*[:=]\s*["']meta["']""")
_STORES = ("signins", "detect", "outbox", "guardrail")
_TABLES = {name: re.compile(rf"{name}(?=[(?/\s]|$)", re.MULTILINE) for name in _STORES}


def _table_of(text: str, url: str, batch: bool = False) -> str:
    """Which store lost the race: the sign-in table's clock row, its sign-ins, detection, ... (by table name). A
    sign-in table transaction says which of its writes it was (`signins settle`, `signins merge`, ...)."""
    where = (url + "\n" + text).replace("%27", "'")
    for name, pattern in _TABLES.items():
        if pattern.search(where):
            if name == "signins" and _META.search(where):
                return "clock"
            return f"signins {_signin_write(text)}" if name == "signins" and batch else name
    return "other"


_OPERATION = re.compile(r"^(POST|PUT|PATCH|MERGE|DELETE) \S+ HTTP/1\.1", re.MULTILINE)


def _signin_write(text: str) -> str:
    """A sign-in table transaction: a settle's claims (or an adoption: both write report rows), the deletes of
    acknowledged report rows, retention's deletes, or a merge of requests."""
    if '"signin_row"' in text:
        return "settle"
    operations = _OPERATION.findall(text)
    if operations and all(o == "DELETE" for o in operations):
        return "expire" if "f%7C" in text else "ack"
    return "merge"


def count_transport(counts: Counts) -> None:
    """Every request of every SDK client of this process through `counts` (the default transport's send)."""
    from azure.core.pipeline.transport import RequestsTransport

    original = RequestsTransport.send

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        response = original(self, request, **kwargs)
        counts.record(request, response)
        return response

    RequestsTransport.send = send  # type: ignore[method-assign]


class Events(logging.Handler):
    """The product's own log lines (`BINDWATCH {json}`), counted by event name."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("BINDWATCH "):
            line = orjson.loads(message[len("BINDWATCH ") :])
            self.seen[line.get("event", "?")] += 1
            if line.get("event") == "batch_failed":  # why: the error's type and HTTP status, as the product logs it
                self.seen[f"batch_failed: {line.get('error')}"] += 1


# --- one instance (a process) -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What every instance of one run is told."""

    connection: str
    prefix: str
    corpus: str  # the corpus file, one event body a line
    partitions: int
    batch: int
    redeliver_every: int  # 0: no redelivery
    settle_minutes: float


def app_settings(plan: Plan) -> dict[str, str]:
    """The app settings of the function app on Azurite (no destination: no alert leaves the run)."""
    return {
        "AzureWebJobsStorage": plan.connection,
        "STATE_TABLE_PREFIX": plan.prefix,
        "REJECTED_CONTAINER": "rejected-" + plan.prefix.lower(),
        "SETTLE_MINUTES": str(plan.settle_minutes),
    }


def events_of(partition: int, bodies: list[bytes]) -> list[Any]:
    import azure.functions as func

    context = func.meta.Datum(json.dumps({"PartitionId": str(partition)}), "json")
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    return [
        func.EventHubEvent(
            body=b,
            trigger_metadata={"PartitionContext": context},
            sequence_number=i,
            offset=str(i * 100_000),
            enqueued_time=at,
        )
        for i, b in enumerate(bodies)
    ]


def instance(plan: Plan, mine: list[int]) -> None:
    """One function instance (`python -m bench.scale --instance`): the host's app settings, the worker's own ingest
    service, its partitions' batches. It says `ready` on standard output, starts at a line on standard input, and
    prints what it did as one JSON line."""
    for name in list(os.environ):
        if name.startswith(("ALERT_", "STATE_", "AzureWebJobsStorage", "SETTLE_", "RULES_", "BINDWATCH_")):
            del os.environ[name]
    os.environ.update(app_settings(plan))
    counts = Counts()
    count_transport(counts)
    events = Events()
    log = logging.getLogger("bindwatch")
    log.addHandler(events)
    log.setLevel(logging.DEBUG)
    log.propagate = False

    from shared.functions.ingest import ingest_signins
    from shared.functions.worker import WORKER

    bodies = [line for line in Path(plan.corpus).read_bytes().splitlines() if line.strip()]
    queues = {p: events_of(p, b) for p, b in enumerate(split(bodies, plan.partitions)) if p in mine}
    function = ingest_signins.build().get_user_function()
    WORKER.ingest()  # the worker's first invocation builds the service and opens the tables: before the clock
    counts.clear()
    events.seen.clear()
    print("ready", flush=True)
    sys.stdin.readline()
    started, cpu = time.time(), time.process_time()
    records = redelivered = failures = batches = 0
    for _, batch in interleaved(queues, plan.batch):
        batches += 1
        failures += run(function, batch)
        size = sum(len(orjson.loads(e.get_body())["records"]) for e in batch)
        records += size
        if plan.redeliver_every and batches % plan.redeliver_every == 0:
            failures += run(function, batch)
            redelivered += size
    done = {
        "partitions": mine,
        "started": started,
        "ended": time.time(),
        "cpu": time.process_time() - cpu,
        "records": records,
        "redelivered": redelivered,
        "batches": batches,
        "failures": failures,
        "requests": counts.requests,
        "kinds": dict(counts.kinds),
        "conflicts": dict(counts.conflicts),
        "statuses": {str(k): v for k, v in counts.statuses.items()},
        "events": dict(events.seen),
    }
    print(json.dumps(done), flush=True)


def interleaved(queues: dict[int, list[Any]], size: int) -> Iterator[tuple[int, list[Any]]]:
    """The partitions' batches in turn, each partition in its own order."""
    positions = dict.fromkeys(queues, 0)
    while positions:
        for partition in list(positions):
            start = positions[partition]
            batch = queues[partition][start : start + size]
            if not batch:
                del positions[partition]
                continue
            positions[partition] = start + size
            yield partition, batch


def run(function: Any, batch: list[Any]) -> int:
    """One invocation and, if it raises, the host's retries (at once here, not after the policy's back-off); the
    last one says it is the last, so the function dead-letters the batch instead of raising, as on the host.
    Returns the number of failed runs."""
    for attempt in range(RETRIES):
        last = attempt == RETRIES - 1
        context = SimpleNamespace(retry_context=SimpleNamespace(retry_count=attempt, max_retry_count=RETRIES - 1))
        try:
            function(batch, context) if last else function(batch)
            return attempt
        except Exception:
            if last:
                raise
    return RETRIES


# --- a run of N instances ---------------------------------------------------------------------------------------


@dataclass
class Result:
    instances: int
    records: int  # of the corpus (each delivered once, plus the redelivered copies counted apart)
    wall: float
    per_instance: list[dict[str, Any]]
    azurite_cpu: float | None
    mismatches: int = 0
    window_mismatches: int = 0
    unbound: tuple[int, int] = (0, 0)  # unbound sign-ins: stored, replayed
    alerting: tuple[int, int] = (0, 0)  # unbound sign-ins detection counted (first rule): stored, replayed
    drain_seconds: float = 0.0
    reported_late: int = 0  # sign-ins the drain reported for an instance that stopped before acknowledging them

    @property
    def requests(self) -> int:
        return sum(i["requests"] for i in self.per_instance)

    @property
    def conflicts(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for item in self.per_instance:
            total.update(item["conflicts"])
        return total

    @property
    def kinds(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for item in self.per_instance:
            total.update(item["kinds"])
        return total

    @property
    def logged_conflicts(self) -> int:
        return sum(i["events"].get("state_conflict", 0) for i in self.per_instance)

    @property
    def failures(self) -> int:
        return sum(i["failures"] for i in self.per_instance)

    @property
    def dead_lettered(self) -> int:
        """Batches the last retry dead-lettered (their records never reached the tables)."""
        return sum(i["events"].get("batch_dead_lettered", 0) for i in self.per_instance)

    @property
    def redelivered(self) -> int:
        return sum(i["redelivered"] for i in self.per_instance)

    @property
    def rate(self) -> float:
        return self.records / self.wall

    @property
    def instance_rates(self) -> list[float]:
        return [i["records"] / (i["ended"] - i["started"]) for i in self.per_instance]

    def per_thousand(self, count: float) -> float:
        return 1000.0 * count / self.records


def simulate(plan: Plan, instances: int) -> list[dict[str, Any]]:
    """Start the instances (processes), release them together once all are ready, and collect what each did."""
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.scale",
                "--instance",
                json.dumps(asdict(plan)),
                ",".join(map(str, owned(i, instances, plan.partitions))),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(instances)
    ]
    try:
        for process in processes:
            if (process.stdout.readline() if process.stdout else "").strip() != "ready":
                raise RuntimeError("an instance did not start (its error is above)")
        for process in processes:
            if process.stdin:
                process.stdin.write("go\n")
                process.stdin.flush()
        done = []
        for process in processes:
            out, _ = process.communicate(timeout=3600)
            if process.returncode != 0:
                raise RuntimeError(f"an instance failed (exit code {process.returncode}; its error is above)")
            done.append(json.loads(out.strip().splitlines()[-1]))
        return done
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


def cpu_seconds(pid: int | None) -> float | None:
    """A process's user and system CPU seconds, from /proc (Azurite's, here)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    connection: str,
    corpus: Corpus,
    instances: int,
    *,
    partitions: int = 4,
    batch: int = 10,
    redeliver_every: int = 7,
    settle_minutes: float = SETTLE_MINUTES,
    azurite_pid: int | None = None,
    expected: Expected | None = None,
) -> Result:
    """One run: N instances over fresh tables, the final drain, and the comparison with the clean replay."""
    plan = Plan(
        connection=connection,
        prefix="scale" + uuid.uuid4().hex[:10],
        corpus=str(corpus.path),
        partitions=partitions,
        batch=batch,
        redeliver_every=redeliver_every,
        settle_minutes=settle_minutes,
    )
    before = cpu_seconds(azurite_pid)
    done = simulate(plan, instances)
    after = cpu_seconds(azurite_pid)
    wall = max(d["ended"] for d in done) - min(d["started"] for d in done)
    result = Result(instances, corpus.records, wall, done, None if before is None else (after or 0.0) - before)
    settings = load_settings(**app_settings(plan))
    events = Events()
    log = logging.getLogger("bindwatch")
    log.addHandler(events)
    propagate, log.propagate = log.propagate, False
    try:
        started = time.perf_counter()
        compose.ingest_service(settings).pipeline.drain()
        result.drain_seconds = time.perf_counter() - started
    finally:
        log.removeHandler(events)
        log.propagate = propagate
    result.reported_late = events.seen["signin_reported_late"]
    stored, windows = stored_answer(settings)
    expected = expected or replay(corpus, settle_minutes)
    result.mismatches = mismatches(stored, expected.verdicts)
    result.window_mismatches = mismatches(windows, expected.windows)
    result.unbound = (unbound(stored), unbound(expected.verdicts))
    result.alerting = (alerting(windows), alerting(expected.windows))
    return result


# --- exactness ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """The clean replay's answer: final verdicts, and detection's window counts."""

    verdicts: dict[str, tuple[Any, ...]]
    windows: dict[tuple[str, str], tuple[int, int]]


def replay(corpus: Corpus, settle_minutes: float = SETTLE_MINUTES) -> Expected:
    """One process, in memory, the corpus in its order: the answer every run must give."""
    settings = load_settings(SETTLE_MINUTES=settle_minutes)
    pipeline = compose.replay_pipeline(settings, MemoryStore(), settings.settle_seconds)
    finals = {}  # each sign-in's last verdict line, as replay prints them (a late request reopens a sign-in)
    for start in range(0, len(corpus.bodies), 10):
        outcome = pipeline.ingest([Message(b) for b in corpus.bodies[start : start + 10]])
        finals.update((s.correlation_id, s) for s in outcome.finals)
    finals.update((s.correlation_id, s) for s in pipeline.drain().finals)
    detection = next(o.store for o in pipeline.observers if hasattr(getattr(o, "store", None), "merge_buckets"))
    return Expected(verdicts_of(finals.values()), window_counts(detection.merge_buckets({}, 0, EVERY_MINUTE)))


def stored_answer(settings: Any) -> tuple[dict[str, tuple[Any, ...]], dict[tuple[str, str], tuple[int, int]]]:
    service = table_service(settings)
    store = TableStore(service, prefix=settings.state_table_prefix)
    detection = TableDetectionStore(service, settings.state_table_prefix)
    return verdicts_of(store.signins()), window_counts(detection.merge_buckets({}, 0, EVERY_MINUTE))


def verdicts_of(signins: Any) -> dict[str, tuple[Any, ...]]:
    found = {}
    for signin in signins:
        line = verdict_line(signin)
        found[signin.correlation_id] = tuple(tuple(line[k]) if isinstance(line[k], list) else line[k] for k in COMPARED)
    return found


def window_counts(buckets: Buckets) -> dict[tuple[str, str], tuple[int, int]]:
    """(rule, group) -> (sign-ins judged, unbound sign-ins) over every minute: the counts the rules decide on.

    Summed over the minutes because the minute a sign-in counts in is that of the first of its requests to
    arrive, and delivery over partitions changes which one that is (by up to the sign-in's own span); whether
    each sign-in is counted once, in the right group, does not depend on it."""
    totals: dict[tuple[str, str], tuple[int, int]] = {}
    for bucket in buckets.values():
        for rule, groups in bucket.items():
            for key, counts in groups.items():
                judged, unbound = totals.get((rule, key), (0, 0))
                totals[rule, key] = (judged + counts.judged, unbound + counts.unbound)
    return totals


def mismatches(found: dict[Any, Any], wanted: dict[Any, Any]) -> int:
    """Keys missing on either side, plus keys whose values differ."""
    return sum(1 for key in found.keys() | wanted.keys() if found.get(key) != wanted.get(key))


def unbound(verdicts: dict[str, tuple[Any, ...]]) -> int:
    return sum(1 for v in verdicts.values() if v[0] == "unbound")


def alerting(windows: dict[tuple[str, str], tuple[int, int]]) -> int:
    """Unbound sign-ins counted for alerts: the most any rule counted (each counts a sign-in once, in one group;
    the shipped rules leave out browsers and sign-ins no token protection policy evaluated)."""
    totals: Counter[str] = Counter()
    for (rule, _), (_, count) in windows.items():
        totals[rule] += count
    return max(totals.values(), default=0)


# --- the report ---------------------------------------------------------------------------------------------------


def text(results: list[Result], corpus: Corpus, args: argparse.Namespace, info: dict[str, str]) -> list[str]:
    lines = [
        f"machine: {info['cpu']}, {info['cpus']} CPUs, Python {info['python']} ({info['date']})",
        f"corpus: {corpus.records:,} records ({corpus.bytes_per_record / 1024:.1f} KB each) in {len(corpus.bodies)} "
        f"events, {corpus.signins:,} sign-ins ({corpus.unbound_share:.1%} unbound); {args.partitions} partitions, "
        f"{args.batch} events an invocation, every {args.redeliver_every}th batch redelivered",
    ]
    for r in results:
        conflicts = r.conflicts
        lines.append(
            f"N={r.instances}: {r.wall:6.1f} s  {r.rate:7,.0f} records/s  "
            f"({sum(r.instance_rates) / len(r.instance_rates):,.0f} per instance)  "
            f"conflicts {r.per_thousand(sum(conflicts.values())):.1f}/1,000 records {dict(conflicts)}  "
            f"state_conflict lines {r.logged_conflicts}  requests {r.per_thousand(r.requests):.0f}/1,000 records  "
            f"failed runs {r.failures}  dead-lettered batches {r.dead_lettered}  "
            f"redelivered {r.redelivered:,} records  mismatches {r.mismatches} "
            f"(windows {r.window_mismatches})  reported late {r.reported_late}  unbound {r.unbound[0]}/{r.unbound[1]}  "
            f"counted for alerts {r.alerting[0]}/{r.alerting[1]}  drain {r.drain_seconds:.1f} s"
        )
        why: Counter[str] = Counter()
        for item in r.per_instance:
            why.update({k: v for k, v in item["events"].items() if k.startswith("batch_failed: ")})
        lines += [f"    {count} x {reason}" for reason, count in why.most_common()]
    return lines


def markdown(results: list[Result], corpus: Corpus, args: argparse.Namespace, info: dict[str, str]) -> str:
    out = [
        "# Scale figures",
        "",
        f"Written by `make bench-scale` (`bench/scale.py`) on {info['date']} at commit {info['commit']}; every figure"
        ' below is from that one run. docs/capacity.md ("Scaling out") quotes them.',
        "",
        f"- Machine: {info['cpu']}, **{info['cpus']} CPUs** shared by the N instances and the one Azurite (a single"
        f" Node.js process, in memory), Python {info['python']}, `{info['platform']}`. Other work ran on the machine"
        " at the same time and may have disturbed the timings; the counts and the exactness do not depend on timing"
        " (the conflicts do, on how the instances' batches happen to overlap).",
        f"- Corpus: {corpus.records:,} records of {corpus.bytes_per_record / 1024:.1f} KB ({corpus.signins:,}"
        f" sign-ins, {corpus.unbound_share:.1%} unbound, 1-4 requests each; `bench/corpus.py`'s traffic) in"
        f" event-time order, 80 records an event, {len(corpus.bodies)} events spread over {args.partitions}"
        " partitions by a hash of the event, so a sign-in's requests land on different partitions.",
        f"- Each instance is a process calling the Event Hub function (`ingest_signins`) with {args.batch} events an"
        " invocation; its ingest service is the one `compose.ingest_service` builds from the app settings, on Azurite"
        " tables. An instance with several partitions takes their batches in turn, one at a time. Every"
        f" {args.redeliver_every}th batch of an instance is delivered again after it succeeded"
        f" ({results[0].redelivered if results else 0:,} records a run). Sign-ins settle after"
        f" {args.settle_minutes:g} minute(s) of event time: the corpus spans minutes, and with the default 10 the"
        " settling would all happen in the final drain instead of in the run.",
        "- A failed run is an invocation that raised: it runs again at once (the host waits its retry policy's"
        " back-off first), and the sixth run, told it is the last, dead-letters the batch as on the host. A"
        " dead-lettered batch's records never reach the tables, so they show as mismatches.",
        "- Wall time: from all instances released together to the last one done (start-up and the final drain left"
        " out). Records/s per instance: each instance's records over its own time. CPU: the instances' own (mean)"
        " and Azurite's.",
        "- Conflicts: answers 409 (an insert of a row that exists), 412 (the ETag changed) and 404 (a write to a row"
        " another writer removed), counted at each instance's HTTP transport, one per failed entity group"
        " transaction; each costs a re-read and a retry. The sign-in table inserts an uncached sign-in without"
        " reading it first, so its 409s include guesses that did not come true, with one instance too. Storage"
        " requests: every HTTP request the instances sent, redelivered batches included.",
        "- Exactness: after the instances stopped, one final drain, then the stored verdicts (verdict, enforcement,"
        " requests, unbound requests, status codes per correlation ID) and detection's window counts (judged and"
        " unbound sign-ins per rule and group) against a clean in-memory replay of the same corpus in one process"
        " (`compose.replay_pipeline`). A mismatch is a sign-in or group missing on one side or counted differently."
        " Reported late: sign-ins whose report row a stopped instance had not yet deleted (it batches those deletes"
        " for up to a minute), which the drain reports a second time, as a restart does.",
        "",
        "| Instances | Partitions each | Wall time | Records/s | Records/s per instance | CPU s per instance"
        " | Azurite CPU s | Conflicts per 1,000 records | Storage requests per 1,000 records | Failed runs"
        " | Dead-lettered batches |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rates = r.instance_rates
        cpu = sum(i["cpu"] for i in r.per_instance) / len(r.per_instance)
        azurite_cpu = f"{r.azurite_cpu:.1f}" if r.azurite_cpu is not None else "—"
        out.append(
            f"| {r.instances} | {args.partitions // r.instances} | {r.wall:.1f} s | {r.rate:,.0f} "
            f"| {sum(rates) / len(rates):,.0f} | {cpu:.1f} | {azurite_cpu} "
            f"| {r.per_thousand(sum(r.conflicts.values())):.1f} | {r.per_thousand(r.requests):.0f} | {r.failures} "
            f"| {r.dead_lettered} |"
        )
    out += [
        "",
        "| Instances | Requests per 1,000 records by kind | Conflicts by table and status (counts)"
        " | `state_conflict` log lines | Reported late at the drain | Verdict mismatches | Window mismatches"
        " | Unbound sign-ins (stored / replay) | Counted for alerts (stored / replay) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        kinds = ", ".join(f"{k} {r.per_thousand(v):.0f}" for k, v in sorted(r.kinds.items()))
        detail = ", ".join(f"{k}: {v:,}" for k, v in sorted(r.conflicts.items())) or "none"
        out.append(
            f"| {r.instances} | {kinds} | {detail} | {r.logged_conflicts:,} | {r.reported_late:,} "
            f"| **{r.mismatches}** | **{r.window_mismatches}** | {r.unbound[0]:,} / {r.unbound[1]:,} "
            f"| {r.alerting[0]:,} / {r.alerting[1]:,} |"
        )
    return "\n".join(out) + "\n"


def commit() -> str:
    """The commit measured, and whether product code had changes not yet committed (work in progress)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" (with uncommitted changes to shared/)" if git("status", "--porcelain", "--", "shared") else "")


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--instance":
        instance(Plan(**json.loads(sys.argv[2])), [int(p) for p in sys.argv[3].split(",") if p])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=12_000, help="records in the corpus")
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2, 4], help="the N to run")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=5, help="events an invocation")
    parser.add_argument("--redeliver-every", type=int, default=5, help="every so many batches run twice (0: none)")
    parser.add_argument("--settle-minutes", type=float, default=SETTLE_MINUTES)
    parser.add_argument("--figures", type=Path, default=FIGURES, help="where the figures are written (markdown)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: the instances and Azurite are stopped too
    log = lambda message: print(f"bench-scale: {message}", file=sys.stderr, flush=True)  # noqa: E731
    info = {**machine(), "commit": commit()}
    results = []
    with tempfile.TemporaryDirectory(prefix="bindwatch-scale-") as folder:
        log(f"generating {args.records:,} records")
        corpus = scale_corpus(args.records, Path(folder))
        log("the clean replay, in memory")
        expected = replay(corpus, args.settle_minutes)
        server = azurite.start()
        try:
            for n in args.instances:
                log(f"{n} instance(s)")
                result = measure(
                    server.connection_string,
                    corpus,
                    n,
                    partitions=args.partitions,
                    batch=args.batch,
                    redeliver_every=args.redeliver_every,
                    settle_minutes=args.settle_minutes,
                    azurite_pid=server.process.pid,
                    expected=expected,
                )
                log(text([result], corpus, args, info)[-1])
                results.append(result)
        finally:
            server.stop()
    print("\n".join(text(results, corpus, args, info)))
    args.figures.parent.mkdir(parents=True, exist_ok=True)
    args.figures.write_text(markdown(results, corpus, args, info), encoding="utf-8")
    print(f"figures written to {args.figures}")
    return 0 if all(r.mismatches == 0 and r.window_mismatches == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
