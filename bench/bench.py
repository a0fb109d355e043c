"""`make bench` (`python -m bench.bench`): bindwatch's speed as users run it, against bare `orjson.loads`, in one run.

The baseline is `orjson.loads` of each body of the same bytes, and nothing else (no walk over the records). Each
path is timed as users and the host run it, the median of `--runs` runs:
  (1) `python -m shared replay FILE --format jsonl` as a subprocess, its start-up (the same command on a file of
      one record, timed in the same run) subtracted, standard output to a file
  (2) the Event Hub function in process: the blueprint's own function called with lists of EventHubEvent
      (host.json's maxEventBatchSize a call), the ingest service built from in-memory parts, then settled
  (3) `python -m shared report FILE` as a subprocess, start-up subtracted, standard output to /dev/null
  (4) the Table store on Azurite (a smaller corpus): records/s, Azurite's own CPU time and storage requests per
      1,000 records; then its worst case: 20 bodies of 1 MB of tiny records (each its own sign-in) in one
      invocation, at the default bucket count and at the most (`--tiny-buckets`)
(1)-(3) run on two corpora: the main one (~5,000 users, 4 apps) and one with thousands of distinct apps and
users, to show whether detection's cost grows with the number of groups it has seen. Then the memory per open
sign-in and the latency of a 100-record batch. The figures go to standard output and to docs/bench-figures.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import azure.functions as func
import orjson
from azure.data.tables import TableServiceClient

from shared.app import compose
from shared.app.service import IngestService
from shared.core.message import Message, Origin
from shared.core.rejection import Rejection
from shared.detect.guardrail_store import MemoryGuardrailStore
from shared.detect.state import MemoryDetectionStore
from shared.functions.ingest import ingest_signins
from shared.functions.worker import WORKER
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.settings import load_settings
from shared.storage.detection_table import TableDetectionStore
from shared.storage.guardrail_table import TableGuardrail
from shared.storage.signin_rows import BUCKETS, MAX_BUCKETS
from shared.storage.signin_table import TableStore
from shared.synth.records import BASE_TIME, body
from shared.synth.traffic import Traffic
from tests.support import azurite
from tests.support.state import Counter

from .corpus import RECORDS_PER_BODY, Corpus, main_corpus, make_bodies, many_groups_corpus, one_record_file

__all__ = ["BODIES_PER_INVOCATION", "RECORDS_PER_BODY", "make_bodies"]  # bench/storage_size.py imports these

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "bench-figures.md"
BODIES_PER_INVOCATION = 10  # the Table path's invocations (README's storage figures are per 10 messages)


def events_per_invocation() -> int:
    """host.json's maxEventBatchSize: the most events the host hands the function at once."""
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    return int(host["extensions"]["eventHubs"]["maxEventBatchSize"])


@dataclass(frozen=True)
class Timing:
    """One timed call: wall-clock seconds, and CPU seconds of this process and of the children it waited for."""

    wall: float
    cpu: float

    def __sub__(self, other: Timing) -> Timing:
        return Timing(self.wall - other.wall, self.cpu - other.cpu)


def timed(fn: Callable[[], object]) -> Timing:
    gc.collect()
    before = _cpu()
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    return Timing(wall, _cpu() - before)


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def median_of(runs: int, fn: Callable[[], object]) -> float:
    return statistics.median(timed(fn).wall for _ in range(runs))


def paired(runs: int, path: Callable[[], object], base: Callable[[], object], startup: Callable[[], object] | None):
    """`runs` rounds of: start-up (if any), the baseline, the path, back to back, so that a busy neighbour on a
    shared machine slows a path and its baseline alike; the medians of the rounds' figures."""
    rounds = []
    for _ in range(runs):
        start = timed(startup) if startup is not None else Timing(0.0, 0.0)
        baseline = timed(base)
        rounds.append((timed(path) - start, baseline, start))
    return Paired(
        wall=statistics.median(r[0].wall for r in rounds),
        cpu=statistics.median(r[0].cpu for r in rounds),
        base_wall=statistics.median(r[1].wall for r in rounds),
        base_cpu=statistics.median(r[1].cpu for r in rounds),
        ratio=statistics.median(r[1].wall / r[0].wall for r in rounds),
        cpu_ratio=statistics.median(r[1].cpu / r[0].cpu for r in rounds),
        startup=statistics.median(r[2].wall for r in rounds),
    )


@dataclass(frozen=True)
class Paired:
    wall: float  # the path's median wall-clock seconds, start-up subtracted
    cpu: float  # and its CPU seconds (its own process, or the subprocess)
    base_wall: float  # bare orjson.loads of the same bytes
    base_cpu: float
    ratio: float  # median over rounds of baseline / path, wall clock
    cpu_ratio: float  # the same in CPU time: far less sensitive to other load on the machine
    startup: float  # the subtracted start-up, wall clock (0 in process)


# --- the baseline -----------------------------------------------------------------------------------------------


def bare_orjson(bodies: list[bytes]) -> None:
    for item in bodies:
        orjson.loads(item)


# --- (1) and (3): the command line as a subprocess ------------------------------------------------------------------


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "shared", *args]


def run_replay(path: Path, records: int, out: Path) -> None:
    """`python -m shared replay FILE --format jsonl > out`; the summary line must count every record."""
    with out.open("wb") as sink:
        done = subprocess.run(
            cli("replay", str(path), "--format", "jsonl"), stdout=sink, stderr=subprocess.PIPE, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"replay failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    with out.open("rb") as written:
        last = written.readlines()[-1]
    summary = orjson.loads(last)
    if summary.get("type") != "summary" or summary.get("records") != records:
        raise RuntimeError(f"replay judged {summary.get('records')} records, not {records}")


def run_report(path: Path) -> None:
    done = subprocess.run(cli("report", str(path)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"report failed ({done.returncode}): {done.stderr.decode()[-500:]}")


# --- (2): the Event Hub function in process ---------------------------------------------------------------------


class MemoryDeadLetter:
    def __init__(self) -> None:
        self.rejections: list[Rejection] = []

    def write(self, rejections: list[Rejection]) -> str | None:
        self.rejections.extend(rejections)
        return "memory" if rejections else None


def memory_service() -> IngestService:
    """The function's ingest service, every part in memory: sign-ins, detection state, dead letters; no delivery."""
    settings = load_settings()
    watchers = compose.observers(settings, (MemoryDetectionStore(), MemoryGuardrailStore()))  # as the function
    pipeline = Pipeline(MemoryStore(), settings.settle_seconds, observers=watchers)
    return IngestService(pipeline, MemoryDeadLetter(), None, budget_seconds=3600.0)


def hub_events(bodies: list[bytes]) -> list[func.EventHubEvent]:
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    return [
        func.EventHubEvent(body=b, sequence_number=i, offset=str(i * 1000), enqueued_time=at)
        for i, b in enumerate(bodies)
    ]


def run_function(events: list[func.EventHubEvent], per_call: int, records: int) -> None:
    """The blueprint's function over the events, `per_call` a call; then every sign-in settled (the timer's work)."""
    service = memory_service()
    WORKER.use(ingest=service)
    try:
        function = ingest_signins.build().get_user_function()
        for start in range(0, len(events), per_call):
            function(events[start : start + per_call])
        service.pipeline.drain()
    finally:
        WORKER.reset()
    rejected = len(service.dead_letter.rejections)  # type: ignore[attr-defined]
    if rejected:
        raise RuntimeError(f"the function rejected {rejected} messages of a {records}-record corpus")


# --- (4): the Table store on Azurite ----------------------------------------------------------------------------


def invocations(bodies: list[bytes], per_invocation: int = BODIES_PER_INVOCATION) -> list[list[Message]]:
    """Event Hub messages with their coordinates (so each invocation has its rerun key, as on the host)."""
    messages = [
        Message(b, Origin(source="bench", partition="0", offset=str(i), sequence_number=i))
        for i, b in enumerate(bodies)
    ]
    return [messages[i : i + per_invocation] for i in range(0, len(messages), per_invocation)]


@dataclass(frozen=True)
class TableRun:
    timing: Timing  # the pipeline's wall clock, and this process's CPU (not Azurite's)
    server_cpu: float | None  # Azurite's own CPU seconds over the same span (None without /proc)
    per_thousand: float  # storage requests per 1,000 records


def table_run(
    bodies: list[bytes], records: int, per_invocation: int = BODIES_PER_INVOCATION, buckets: int = BUCKETS
) -> TableRun:
    """The function's pipeline on Azurite tables, `per_invocation` bodies a call: its time, Azurite's CPU time in
    the same span (Azurite runs on the same machine: its CPU is what the pipeline waits for), and storage requests
    per 1,000 records."""
    batches = invocations(bodies, per_invocation)
    server = azurite.start()
    try:
        counter = Counter()
        service = TableServiceClient.from_connection_string(server.connection_string, transport=counter)
        store = TableStore(service, prefix="bench", buckets=buckets).ensure()
        stores = (TableDetectionStore(service, "bench"), TableGuardrail(service, "bench"))
        pipeline = Pipeline(store, 600.0, observers=compose.observers(load_settings(), stores))  # as the function
        pipeline.ingest([])  # create the detection tables before counting
        counter.requests.clear()
        before = server_cpu(server)
        elapsed = timed(lambda: [pipeline.ingest(batch) for batch in batches])
        after = server_cpu(server)
        used = after - before if after is not None and before is not None else None
        return TableRun(elapsed, used, 1000.0 * counter.count / records)
    finally:
        server.stop()


def server_cpu(server: azurite.Azurite) -> float | None:
    """CPU seconds (user and system) Azurite's process and its children have used so far, from /proc."""
    pid = server.process.pid
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ticks = 0
        for process in [pid, *map(int, children)]:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def tiny_bodies(events: int = 20, size: int = 1_000_000) -> tuple[list[bytes], int]:
    """The worst case for the Table path: Event Hub bodies of `size` bytes of the smallest records that are judged,
    each its own sign-in (so every record is a new sign-in: two rows to write, nothing to fold into)."""
    bodies, made = [], 0
    for _ in range(events):
        records, used = [], len(b'{"records":[]}')
        while True:
            item = {
                "category": "SignInLogs",
                "properties": {
                    "id": f"r{made:07d}",
                    "correlationId": str(uuid.UUID(int=made + 1)),
                    "createdDateTime": "2026-03-10T08:00:00Z",
                    "userPrincipalName": f"u{made % 500}@contoso.com",
                },
            }
            grown = len(orjson.dumps(item)) + 1
            if used + grown > size:
                break
            records.append(item)
            used += grown
            made += 1
        bodies.append(orjson.dumps({"records": records}))
    return bodies, made


def tiny_worst_case(buckets: int) -> tuple[str, str]:
    """20 bodies of 1 MB of tiny records in one invocation, on a table of `buckets` buckets: a line of figures."""
    bodies, signins = tiny_bodies()
    run = table_run(bodies, signins, per_invocation=len(bodies), buckets=buckets)
    azurite_cpu = f"{run.server_cpu:.1f} s" if run.server_cpu is not None else "not measured"
    return (
        f"tiny records worst case, {buckets} buckets",
        f"{signins:,} sign-ins (20 bodies of 1 MB, one record each) in one invocation: {run.timing.wall:.1f} s "
        f"({signins / run.timing.wall:,.0f}/s); bindwatch CPU {run.timing.cpu:.1f} s, Azurite CPU {azurite_cpu}; "
        f"{run.per_thousand:.0f} storage requests per 1,000 records",
    )


# --- memory and latency -----------------------------------------------------------------------------------------


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


def batch_latency_ms(bodies: list[bytes]) -> float:
    """Median time to judge a 100-record batch and evaluate its rules, in-memory store."""
    records = [r for b in bodies[:20] for r in orjson.loads(b)["records"]]
    batches = [body(records[i : i + 100]) for i in range(0, len(records) - 99, 100)]
    pipeline = compose.replay_pipeline(load_settings(), MemoryStore(), 600.0)
    times = []
    for b in batches:
        start = time.perf_counter()
        pipeline.ingest([Message(b)])
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


# --- the run ----------------------------------------------------------------------------------------------------


@dataclass
class Row:
    path: str
    corpus: str
    records: int
    timing: Paired
    note: str = ""

    @property
    def rate(self) -> float:
        return self.records / self.timing.wall

    @property
    def base_rate(self) -> float:
        return self.records / self.timing.base_wall


@dataclass
class Figures:
    machine: dict[str, str]
    corpora: list[Corpus]
    rows: list[Row] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)


def machine() -> dict[str, str]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def measure(args: argparse.Namespace, folder: Path) -> Figures:
    log = lambda text: print(f"bench: {text}", file=sys.stderr, flush=True)  # noqa: E731
    log(f"generating {args.records:,} records twice (main corpus, many-groups corpus)")
    corpora = [main_corpus(args.records, folder), many_groups_corpus(args.records, folder)]
    figures = Figures(machine(), corpora)
    runs = args.runs
    one = one_record_file(folder)
    out = folder / "replay-out.jsonl"
    per_call = events_per_invocation()
    for corpus in corpora:
        n = corpus.records
        base = lambda c=corpus: bare_orjson(c.bodies)  # noqa: E731
        log(f"{corpus.name}: replay")
        replay = paired(
            runs, lambda c=corpus: run_replay(c.path, c.records, out), base, lambda: run_replay(one, 1, out)
        )
        figures.rows.append(Row("(1) replay, subprocess", corpus.name, n, replay, "start-up subtracted"))
        log(f"{corpus.name}: the Event Hub function")
        events = hub_events(corpus.bodies)
        function = paired(runs, lambda e=events, c=corpus: run_function(e, per_call, c.records), base, None)
        figures.rows.append(
            Row("(2) Event Hub function, in process", corpus.name, n, function, f"{per_call} events a call")
        )
        log(f"{corpus.name}: report")
        report = paired(runs, lambda c=corpus: run_report(c.path), base, lambda: run_report(one))
        figures.rows.append(Row("(3) report, subprocess", corpus.name, n, report, "start-up subtracted"))
    main = corpora[0]
    table_bodies = main.bodies[: max(1, args.table_records // RECORDS_PER_BODY)]
    table_records = sum(len(orjson.loads(b)["records"]) for b in table_bodies)
    log(f"Table store on Azurite: {table_records:,} records")
    table_base = timed(lambda: bare_orjson(table_bodies))
    table = table_run(table_bodies, table_records)
    server = f"Azurite's own CPU {table.server_cpu:.2f} s; " if table.server_cpu is not None else ""
    figures.rows.append(
        Row(
            "(4) pipeline on Table store (Azurite)",
            main.name,
            table_records,
            Paired(
                table.timing.wall,
                table.timing.cpu,
                table_base.wall,
                table_base.cpu,
                table_base.wall / table.timing.wall,
                table_base.cpu / table.timing.cpu,
                0.0,
            ),
            f"one run, smaller corpus; {server}{table.per_thousand:.0f} storage requests per 1,000 records",
        )
    )
    tiny = []
    for buckets in args.tiny_buckets:
        log(f"Table store on Azurite: the tiny-records worst case, {buckets} buckets")
        tiny.append(tiny_worst_case(buckets))
    log(f"memory per open sign-in ({args.open_signins:,} open)")
    per_signin, open_signins = memory_per_open_signin(args.open_signins)
    latency = batch_latency_ms(main.bodies)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures.extra = [
        ("memory per open sign-in", f"{per_signin:,.0f} bytes with {open_signins:,} open (tracemalloc)"),
        ("a 100-record batch judged, rules evaluated", f"{latency:.1f} ms median, in-memory store"),
        ("bench process RSS peak", f"{rss:,.0f} MB (corpora held in memory included)"),
        *tiny,
    ]
    return figures


def text(figures: Figures, runs: int) -> list[str]:
    m = figures.machine
    lines = [
        f"machine: {m['cpu']}, {m['cpus']} CPUs, Python {m['python']}, {m['platform']} ({m['date']})",
        f"medians of {runs} rounds (start-up, baseline, path back to back); baseline: bare orjson.loads of each"
        " body of the same bytes, nothing else",
    ]
    for c in figures.corpora:
        lines.append(
            f"corpus {c.name}: {c.records:,} records ({c.bytes_per_record / 1024:.1f} KB each) in {len(c.bodies)} "
            f"bodies, {c.signins:,} sign-ins ({c.unbound_share:.1%} unbound), {c.users:,} users, {c.apps:,} apps"
        )
    for row in figures.rows:
        t = row.timing
        lines.append(
            f"{row.path:<38} {row.corpus:<11} {row.rate:>7,.0f} records/s (orjson.loads {row.base_rate:>7,.0f})"
            f"  ratio {t.ratio:.2f}  CPU-time ratio {t.cpu_ratio:.2f}"
            + (f"  start-up {t.startup:.2f} s" if t.startup else "")
            + f"  {row.note}"
        )
    lines += [f"{name:<38} {value}" for name, value in figures.extra]
    return lines


def markdown(figures: Figures, runs: int) -> str:
    m = figures.machine
    out = [
        "# Benchmark figures",
        "",
        f"Written by `make bench` (`bench/bench.py`) on {m['date']}; every figure below is from that one run.",
        'README.md\'s "Speed and cost" and docs/capacity.md quote them.',
        "",
        f"- Machine: {m['cpu']}, {m['cpus']} CPUs, Python {m['python']}, `{m['platform']}`",
        f"- Medians of {runs} rounds; each round times the start-up (subprocess paths: the same command on a"
        " one-record file), the baseline and the path back to back. Baseline: bare `orjson.loads` of each Event Hub"
        " body of the same bytes, no walk.",
        "- Ratio: baseline time / path time (wall clock, start-up subtracted). CPU-time ratio: the same in CPU"
        " seconds (the subprocess's own), which other load on a shared machine disturbs far less.",
        "",
        "| Corpus | Records | KB a record | Sign-ins | Unbound | Distinct users | Distinct apps |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in figures.corpora:
        out.append(
            f"| {c.name} | {c.records:,} | {c.bytes_per_record / 1024:.1f} | {c.signins:,} | {c.unbound_share:.1%} "
            f"| {c.users:,} | {c.apps:,} |"
        )
    out += [
        "",
        "| Path | Corpus | Records | records/s | `orjson.loads` records/s | Ratio | CPU-time ratio | Start-up | Note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in figures.rows:
        t = r.timing
        startup = f"{t.startup:.2f} s" if t.startup else "—"
        out.append(
            f"| {r.path} | {r.corpus} | {r.records:,} | {r.rate:,.0f} | {r.base_rate:,.0f} "
            f"| **{t.ratio:.2f}** | {t.cpu_ratio:.2f} | {startup} | {r.note} |"
        )
    out += ["", "| Measure | Result |", "|---|---|"]
    out += [f"| {name} | {value} |" for name, value in figures.extra]
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=30_000, help="records in each of the two corpora")
    parser.add_argument("--table-records", type=int, default=4_000, help="records for the Table path (Azurite)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--tiny-buckets",
        type=lambda text: [int(n) for n in text.split(",") if n],
        default=[BUCKETS, MAX_BUCKETS],
        help="bucket counts of the tiny-records worst case (comma-separated; empty: skip it)",
    )
    parser.add_argument("--open-signins", type=int, default=50_000, help="for the memory per open sign-in")
    parser.add_argument("--figures", type=Path, default=FIGURES, help="where the figures are written (markdown)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bindwatch-bench-") as folder:
        figures = measure(args, Path(folder))
    print("\n".join(text(figures, args.runs)))
    args.figures.parent.mkdir(parents=True, exist_ok=True)
    args.figures.write_text(markdown(figures, args.runs), encoding="utf-8")
    print(f"figures written to {args.figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
