"""`python -m shared report`: the readiness report from message files or from the stored sign-ins.

The shell around `shared.views.readiness` (the figures) and `shared.views.report_html`
(the page): read the input, run the pipeline, write the HTML file and print a
summary or the figures as JSON.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from shared.app import compose
from shared.ingest.files import Source, read_sources, sources
from shared.ingest.replay import Replay
from shared.settings import ConfigurationError, Settings
from shared.views.lookup import DetailStore
from shared.views.readiness import figures, from_details
from shared.views.report_html import render
from shared.views.users import would_break_csv

from . import inputs
from .interrupt import Interrupt
from .output import dumps
from .paths import check_output
from .progress import Progress
from .replay import settle_seconds

StoreOpener = Callable[[Settings], DetailStore]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """The `report` subcommand."""
    parser = commands.add_parser("report", help="readiness report: who would be blocked, why, can we enforce")
    parser.add_argument("paths", nargs="*", metavar="PATH", help="log files as for replay (with --store memory)")
    inputs.add_arguments(parser)
    parser.add_argument("--store", choices=["memory", "table"], default="memory", help="table: the stored sign-ins")
    parser.add_argument("--html", metavar="FILE", help="write the self-contained HTML report here")
    parser.add_argument("--format", choices=["text", "json"], default="text", help="what goes to standard output")
    parser.add_argument("--settle-minutes", type=float, help="override SETTLE_MINUTES")
    parser.add_argument("--top", type=int, default=15, help="rows per breakdown table")
    parser.add_argument("--limit", type=int, default=200, help="ready users listed (every user who would break is)")
    parser.add_argument("--quiet", action="store_true", help="no progress (shown only on a terminal)")
    return parser


def users_csv_path(html_path: str) -> Path:
    """The CSV of every user who would break, beside the page: report.html -> report.would-break.csv."""
    page = Path(html_path)
    return page.with_name(page.stem + ".would-break.csv")


def run(args: argparse.Namespace, settings: Settings, out: IO[str], open_store: StoreOpener | None = None) -> int:
    """Compute the figures, write the HTML (and the CSV beside it) if asked, print text or JSON.

    0 on success; 3 when the input held nothing that could be judged; 130 after Ctrl-C (the report then
    covers what was read).
    """
    check_output(args.html, "--html")
    with Interrupt() as interrupt:
        result, replay = compute(args, settings, open_store, interrupt)
    if args.html:
        csv_path = users_csv_path(args.html)
        csv_path.write_text(would_break_csv(result["users"]["would_break"]), encoding="utf-8")
        Path(args.html).write_text(render(result, users_csv=csv_path.name), encoding="utf-8")
    print(dumps(result) if args.format == "json" else summary_text(result, args.html), file=out)
    return inputs.exit_code(replay, interrupt.requested) if replay is not None else 0


def compute(
    args: argparse.Namespace,
    settings: Settings,
    open_store: StoreOpener | None = None,
    interrupt: Interrupt | None = None,
) -> tuple[dict[str, Any], Replay | None]:
    """The figures, and the replay that read the input (None for the stored sign-ins)."""
    if args.store == "table":
        if args.paths or args.from_storage:
            raise ConfigurationError("report --store table reads the stored sign-ins; give no PATH")
        store = (open_store or compose.report_store)(settings)
        requests, signins = from_details(store.signin_details())
        # The deployment's store has the kept policy changes; a bare DetailStore (the lookup's shape) has none.
        changes = store.policy_changes() if hasattr(store, "policy_changes") else []
        return figures(requests, signins, top=args.top, limit=args.limit, changes=changes), None
    found = inputs.input_sources(args, settings)
    return from_sources(found, settle_seconds(args, settings), args, interrupt)


def from_sources(
    found: Iterable[Source], settle_seconds: float, args: argparse.Namespace, interrupt: Interrupt | None = None
) -> tuple[dict[str, Any], Replay]:
    """Replay the inputs through the function's own pipeline with the readiness observer attached."""
    pipeline, readiness = compose.report_pipeline(settle_seconds)
    replay = Replay(pipeline)
    messages = read_sources(found, getattr(args, "input_format", "auto"), replay.inputs, getattr(args, "order", "time"))
    progress = Progress("read", enabled=False if getattr(args, "quiet", False) else None)
    for _ in replay.run(interrupt.guard(messages) if interrupt else messages):
        progress.update(replay.tally.records)
    progress.finish(replay.tally.records)
    result = readiness.figures(top=getattr(args, "top", 15), limit=getattr(args, "limit", 200))
    result["input"] = replay.input_section()
    return result, replay


def from_files(paths: list[str], settle_seconds: float, top: int = 15, limit: int = 200) -> dict[str, Any]:
    """The figures of log files (the page generators and tests use this)."""
    args = argparse.Namespace(input_format="auto", top=top, limit=limit, quiet=True)
    return from_sources(sources(paths), settle_seconds, args)[0]


def summary_text(result: dict[str, Any], html_path: str | None) -> str:
    """A few lines for the terminal; the figures themselves are in the HTML or the JSON."""
    s, r, u = result["signins"], result["requests"], result["users"]
    lines = [
        f"{s['judged']} sign-ins judged: {s['bound']} bound, {s['unbound']} unbound, {s['unevaluated']} unevaluated"
        f" ({s['blocked']} blocked, {s['would_be_blocked']} would be blocked, {s['expected_unbound']} expected)",
        f"requests under a token protection policy: {r['evaluated']}; allowed {_pct(r['pct_allowed'])}, "
        f"enforceable {_pct(r['pct_enforceable'])} (per request)",
        f"users: {u['ready_total']} ready to enforce, {u['would_break_total']} would break",
        f"policy hints: {len(result['hints'])}",
    ]
    if "input" in result:
        lines.extend(inputs.input_lines(result["input"]))
    if html_path:
        lines.append(f"report written to {html_path}, every user who would break to {users_csv_path(html_path)}")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"
