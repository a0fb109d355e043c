"""`python -m shared ...`: the command line for the people who act on the verdicts."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from typing import IO, Any

from azure.core.exceptions import AzureError

from . import report
from .delivery import Delivery, build_delivery
from .detection import build_detector
from .eventhub import add_consume_parser, add_send_parser, run_consume, run_send
from .outbox import MemoryOutbox
from .pipeline import Outcome, Pipeline
from .replay import InputError, Replay, check_paths, dumps, messages_from, rejection_record
from .settings import ConfigurationError, Settings, load_settings
from .store import MemoryStore, SignInStore
from .verdict import verdict_line

log = logging.getLogger("bindwatch.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared", description="bindwatch: Token Protection verdicts")
    commands = parser.add_subparsers(dest="command", required=True)
    replay = commands.add_parser("replay", help="judge message files offline, as the function would")
    replay.add_argument("paths", nargs="+", metavar="PATH", help="JSON-lines file, one-body file, directory or -")
    replay.add_argument("--format", choices=["jsonl", "table"], default="table")
    replay.add_argument(
        "--store", choices=["memory", "table"], default="memory", help="where sign-ins are kept (table: Table Storage)"
    )
    replay.add_argument("--settle-minutes", type=float, help="override SETTLE_MINUTES")
    replay.add_argument("--batch", type=_positive, default=10, help="messages per batch (as an invocation)")
    replay.add_argument("--rejected", metavar="PATH", help="write rejected input here as JSON lines")
    replay.add_argument("--quiet", action="store_true", help="no progress on standard error")
    replay.add_argument(
        "--deliver-timeout", type=float, default=120.0, help="seconds to wait for alerts to reach their destinations"
    )
    verdicts = commands.add_parser("verdicts", help="export every sign-in in the store with its verdict")
    verdicts.add_argument("--store", choices=["table"], default="table", help="the store to read (Table Storage)")
    verdicts.add_argument("--format", choices=["jsonl", "table"], default="table")
    report.add_parser(commands)
    add_send_parser(commands)
    add_consume_parser(commands)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None, stdout: IO[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="bindwatch: %(message)s")
    out = stdout or sys.stdout
    try:
        settings = load_settings()
        return _COMMANDS[args.command](args, settings, out)
    except ConfigurationError as error:
        print(f"bindwatch: {error}", file=sys.stderr)
        return 2
    except InputError as error:
        print(f"bindwatch: {error}", file=sys.stderr)
        return 2
    except AzureError as error:
        # The type and status only: SDK messages can carry account URLs.
        status = getattr(error, "status_code", None)
        print(
            f"bindwatch: storage failed: {type(error).__name__}" + (f" (HTTP {status})" if status else ""),
            file=sys.stderr,
        )
        return 1
    return 2


def open_store(kind: str, settings: Settings) -> SignInStore:
    if kind == "table":
        from .table_store import open_table_store

        return open_table_store(settings)
    return MemoryStore()


def run_verdicts(args: argparse.Namespace, settings: Settings, out: IO[str]) -> int:
    """Every sign-in in the store, in replay's verdict format, so an admin can export them."""
    store = open_store(args.store, settings)
    table = args.format == "table"
    if table:
        print(_TABLE_HEADER, file=out)
    count = 0
    for signin in store.signins():
        line = verdict_line(signin)
        print(_row(line) if table else dumps(line), file=out)
        count += 1
    if table:
        print(f"\n{count} sign-ins", file=out)
    return 0


def run_replay(args: argparse.Namespace, settings: Settings, out: IO[str]) -> int:
    """Judge files through the function's pipeline; deliver alerts to the configured destinations, bounded."""
    paths = check_paths(args.paths)
    settle = args.settle_minutes if args.settle_minutes is not None else settings.settle_minutes
    if settle <= 0:
        raise ConfigurationError("--settle-minutes must be above 0")
    sender = build_delivery(settings, MemoryOutbox())
    # Detection state stays in memory: a replay must never touch live alert states.
    detector = build_detector(settings, "memory", handoff=sender.enqueue if sender else None)
    pipeline = Pipeline(open_store(args.store, settings), settle * 60.0, observers=[detector])
    replay = Replay(pipeline, batch_size=args.batch)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        rejected = stack.enter_context(open(args.rejected, "w", encoding="utf-8")) if args.rejected else None
        _print_outcomes(replay.run(messages_from(paths)), args.format, out, rejected, sender)
    summary = replay.summary()
    delivered = _drain(sender, args.deliver_timeout, summary)
    print(_summary_text(summary) if args.format == "table" else dumps(summary), file=out)
    if not args.quiet:
        print(
            f"bindwatch: replayed {summary['records']} records in {time.monotonic() - started:.1f} s", file=sys.stderr
        )
    return 0 if delivered else 1


def _print_outcomes(
    outcomes: Iterable[Outcome], fmt: str, out: IO[str], rejected: IO[str] | None, sender: Delivery | None
) -> None:
    table = fmt == "table"
    if table:
        print(_TABLE_HEADER, file=out)
    for outcome in outcomes:
        for rejection in outcome.rejections:
            print(f"bindwatch: {rejection.describe()}", file=sys.stderr)
            if rejected:
                rejected.write(dumps(rejection_record(rejection)) + "\n")
        for line in outcome.lines:
            print(_row(line) if table else dumps(line), file=out)
        if sender is not None:
            sender.flush()


def _drain(sender: Delivery | None, timeout: float, summary: dict[str, Any]) -> bool:
    """Wait (bounded) for every notification to be delivered; False when anything stayed undelivered."""
    if sender is None:
        return True
    try:
        result = sender.drain(deadline_seconds=timeout)
    finally:
        sender.close()
    summary["deliveries"] = {"delivered": result.delivered, "pending": result.pending, "failed": result.failed}
    for destination, entry_id, state in result.undelivered:
        print(f"bindwatch: notification {entry_id} to {destination} not delivered ({state})", file=sys.stderr)
    return result.ok


_TABLE_HEADER = (
    f"{'VERDICT':<12}{'ENFORCEMENT':<13}{'REQ':>4}{'UNB':>4}  {'CODES':<12}{'USER':<28}{'APPS':<30}CORRELATION ID"
)


def _row(line: dict[str, Any]) -> str:
    if line.get("type") == "verdict":
        codes = ",".join(str(c) for c in line["status_codes"]) or "-"
        apps = ", ".join(line["apps"])[:29]
        return (
            f"{line['verdict']:<12}{line['enforcement']:<13}{line['requests']:>4}{line['unbound_requests']:>4}  "
            f"{codes:<12}{line['user'][:27]:<28}{apps:<30}{line['correlation_id']}"
        )
    if line.get("type") == "alert":
        return f"ALERT {line.get('status', '').upper()}: {line.get('title') or line.get('rule')} at {line.get('at')}"
    return dumps(line)


def _summary_text(summary: dict[str, Any]) -> str:
    parts = [
        f"{summary['signins']} sign-ins from {summary['records']} records",
        f"{summary['unbound']} unbound, {summary['bound']} bound, {summary['unevaluated']} unevaluated",
        f"{summary['duplicates']} duplicate copies, {summary['skipped']} skipped, {summary['rejected']} rejected",
    ]
    return "\n" + "; ".join(parts)


def _send(args: argparse.Namespace, settings: Settings, out: IO[str]) -> int:
    return run_send(args, settings)


def _consume(args: argparse.Namespace, settings: Settings, out: IO[str]) -> int:
    return run_consume(args, settings)


_COMMANDS: dict[str, Any] = {
    "replay": run_replay,
    "verdicts": run_verdicts,
    "report": report.run,
    "send": _send,
    "consume": _consume,
}
