"""`python -m shared replay`: judge log files offline through the function's own pipeline."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterable
from typing import IO, Any

from shared.app import compose
from shared.core.rejection import rejection_line
from shared.ingest.pipeline import Outcome
from shared.ingest.replay import Replay
from shared.notify.delivery import Delivery
from shared.settings import ConfigurationError, Settings

from . import inputs
from .interrupt import Interrupt
from .output import TABLE_HEADER, dumps, row, summary_text

SHOWN_REJECTIONS = 100  # named one by one on standard error; the rest are counted (and kept by --rejected)


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser = commands.add_parser("replay", help="judge sign-in log files offline, as the function would")
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="a file of any supported shape (gzip too), a directory, or - (stdin)"
    )
    inputs.add_arguments(parser)
    parser.add_argument("--format", choices=["jsonl", "table"], default="table")
    parser.add_argument(
        "--store", choices=["memory", "table"], default="memory", help="where sign-ins are kept (table: Table Storage)"
    )
    parser.add_argument("--settle-minutes", type=float, help="override SETTLE_MINUTES")
    parser.add_argument("--batch", type=positive_int, default=10, help="messages per batch (as an invocation)")
    parser.add_argument("--rejected", metavar="PATH", help="write rejected input here as JSON lines")
    parser.add_argument("--quiet", action="store_true", help="no progress on standard error")
    parser.add_argument(
        "--deliver-timeout", type=float, default=120.0, help="seconds to wait for alerts to reach their destinations"
    )
    return parser


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def settle_seconds(args: argparse.Namespace, settings: Settings) -> float:
    minutes = args.settle_minutes if args.settle_minutes is not None else settings.settle_minutes
    if minutes <= 0:
        raise ConfigurationError("--settle-minutes must be above 0")
    return minutes * 60.0


def run(args: argparse.Namespace, settings: Settings, out: IO[str]) -> int:
    """Judge the inputs through the function's pipeline; deliver alerts to the configured destinations, bounded."""
    settle = settle_seconds(args, settings)
    sender = compose.replay_delivery(settings)
    pipeline = compose.replay_pipeline(settings, compose.signin_store(settings, args.store), settle, sender)
    replay = Replay(pipeline, batch_size=args.batch)
    messages = inputs.messages(args, settings, replay)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        rejected = stack.enter_context(open(args.rejected, "w", encoding="utf-8")) if args.rejected else None
        interrupt = stack.enter_context(Interrupt())
        _print_outcomes(replay.run(interrupt.guard(messages)), args.format, out, rejected, sender)
    summary = replay.summary()
    delivered = _drain(sender, args.deliver_timeout, summary)
    print(summary_text(summary) if args.format == "table" else dumps(summary), file=out)
    if args.format == "table" and (summary["rejected"] or not summary["records"]):
        print("\n".join(inputs.input_lines(replay.input_section())), file=out)
    if not args.quiet:
        print(
            f"bindwatch: replayed {summary['records']} records in {time.monotonic() - started:.1f} s", file=sys.stderr
        )
    code = inputs.exit_code(replay, interrupt.requested)
    return code if code or delivered else 1


def _print_outcomes(
    outcomes: Iterable[Outcome], fmt: str, out: IO[str], rejected: IO[str] | None, sender: Delivery | None
) -> None:
    table = fmt == "table"
    if table:
        print(TABLE_HEADER, file=out)
    shown = 0
    for outcome in outcomes:
        for rejection in outcome.rejections:
            shown += 1
            if shown <= SHOWN_REJECTIONS:
                print(f"bindwatch: {rejection.describe()}", file=sys.stderr)
            elif shown == SHOWN_REJECTIONS + 1:
                print(
                    "bindwatch: further rejections are counted in the summary (and kept by --rejected)", file=sys.stderr
                )
            if rejected:
                rejected.write(dumps(rejection_line(rejection)) + "\n")
        for line in outcome.lines:
            print(row(line) if table else dumps(line), file=out)
        if outcome.finals or outcome.observed:
            out.flush()  # verdicts reach a pipe as sign-ins settle, not when a buffer fills
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
