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
from .paths import check_output
from .progress import Progress

Step = tuple[Outcome, list[dict[str, Any]]]  # an outcome and its lines, built once (Replay.steps)
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
    parser.add_argument("--quiet", action="store_true", help="no progress (shown only on a terminal) and no timing")
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
    check_output(args.rejected, "--rejected")
    settle = settle_seconds(args, settings)
    sender = compose.replay_delivery(settings)
    pipeline = compose.replay_pipeline(settings, compose.signin_store(settings, args.store), settle, sender)
    replay = Replay(pipeline, batch_size=args.batch)
    messages = inputs.messages(args, settings, replay)
    started = time.monotonic()
    progress = Progress("replayed", enabled=False if args.quiet else None)
    with contextlib.ExitStack() as stack:
        rejected = stack.enter_context(open(args.rejected, "w", encoding="utf-8")) if args.rejected else None
        interrupt = stack.enter_context(Interrupt())
        outcomes = _counted(replay.steps(interrupt.guard(messages)), replay, progress)
        _print_outcomes(outcomes, args.format, out, rejected, sender)
    progress.finish(replay.tally.records)
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


def _counted(outcomes: Iterable[Step], replay: Replay, progress: Progress) -> Iterable[Step]:
    for step in outcomes:
        yield step
        progress.update(replay.tally.records)


def _print_outcomes(
    outcomes: Iterable[Step], fmt: str, out: IO[str], rejected: IO[str] | None, sender: Delivery | None
) -> None:
    table = fmt == "table"
    if table:
        print(TABLE_HEADER, file=out)
    shown = 0
    for outcome, lines in outcomes:
        for rejection in outcome.dead_letters:
            shown += 1
            if shown <= SHOWN_REJECTIONS:
                print(f"bindwatch: {rejection.describe()}", file=sys.stderr)
            elif shown == SHOWN_REJECTIONS + 1:
                print(
                    "bindwatch: further rejections are counted in the summary (and kept by --rejected)", file=sys.stderr
                )
            if rejected:
                rejected.write(dumps(rejection_line(rejection)) + "\n")
        for line in lines:
            print(row(line) if table else dumps(line), file=out)
        if outcome.finals or outcome.observed:
            out.flush()  # verdicts reach a pipe as sign-ins settle, not when a buffer fills
        if sender is not None:
            sender.flush()


def _drain(sender: Delivery | None, timeout: float, summary: dict[str, Any]) -> bool:
    """Wait (bounded) for every notification to be delivered; False when anything stayed undelivered."""
    if sender is None:
        return True
    _say_what_is_waiting(sender, timeout)
    try:
        result = sender.drain(deadline_seconds=timeout)
    finally:
        sender.close()
    summary["deliveries"] = {"delivered": result.delivered, "pending": result.pending, "failed": result.failed}
    for destination, entry_id, state in result.undelivered:
        print(f"bindwatch: notification {entry_id} to {destination} not delivered ({state})", file=sys.stderr)
    return result.ok


def _say_what_is_waiting(sender: Delivery, timeout: float) -> None:
    """Before the bounded wait: how many notifications, and why each destination has not taken them yet."""
    waiting = sender.waiting()
    if not waiting:
        return
    reasons: dict[str, str] = {}
    for entry in waiting:
        reasons.setdefault(entry.destination, _reason(entry.answer, entry.http_status))
    why = "; ".join(f"{reason} to {destination}" for destination, reason in sorted(reasons.items()))
    print(
        f"bindwatch: waiting up to {timeout:.0f} s for {len(waiting)} notification(s): {why}",
        file=sys.stderr,
        flush=True,
    )


_NETWORK = {
    "ConnectError": "connection refused (or no route to the host)",
    "ConnectTimeout": "connection timed out",
    "ReadTimeout": "no answer in time",
    "RemoteProtocolError": "the server closed the connection",
}


def _reason(answer: str, status: int | None) -> str:
    """The last answer in words (already redacted: no URL, no token)."""
    if status is not None:
        return f"HTTP {status}"
    return _NETWORK.get(answer, answer or "not tried yet")
