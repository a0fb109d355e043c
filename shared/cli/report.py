"""`python -m shared report`: the readiness report from message files or from the stored sign-ins.

The shell around `shared.views.readiness` (the figures) and `shared.views.report_html`
(the page): read the input, run the pipeline, write the HTML file and print a
summary or the figures as JSON.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from shared.app import compose
from shared.ingest.files import check_paths, messages_from
from shared.ingest.replay import Replay
from shared.settings import ConfigurationError, Settings
from shared.views.lookup import DetailStore
from shared.views.readiness import figures, from_details
from shared.views.report_html import render
from shared.views.users import would_break_csv

from .output import dumps
from .paths import check_output
from .progress import Progress
from .replay import settle_seconds

StoreOpener = Callable[[Settings], DetailStore]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """The `report` subcommand."""
    parser = commands.add_parser("report", help="readiness report: who would be blocked, why, can we enforce")
    parser.add_argument("paths", nargs="*", metavar="PATH", help="message files as for replay (with --store memory)")
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
    """Compute the figures, write the HTML (and the CSV beside it) if asked, print text or JSON; 0 on success."""
    check_output(args.html, "--html")
    result = compute(args, settings, open_store)
    if args.html:
        csv_path = users_csv_path(args.html)
        csv_path.write_text(would_break_csv(result["users"]["would_break"]), encoding="utf-8")
        Path(args.html).write_text(render(result, users_csv=csv_path.name), encoding="utf-8")
    print(dumps(result) if args.format == "json" else summary_text(result, args.html), file=out)
    return 0


def compute(args: argparse.Namespace, settings: Settings, open_store: StoreOpener | None = None) -> dict[str, Any]:
    if args.store == "table":
        if args.paths:
            raise ConfigurationError("report --store table reads the stored sign-ins; give no PATH")
        store = (open_store or compose.detail_store)(settings)
        requests, signins = from_details(store.signin_details())
        return figures(requests, signins, top=args.top, limit=args.limit)
    if not args.paths:
        raise ConfigurationError("report needs at least one PATH (or --store table)")
    progress = Progress("read", enabled=False if getattr(args, "quiet", False) else None)
    return from_files(check_paths(args.paths), settle_seconds(args, settings), args.top, args.limit, progress)


def from_files(
    paths: list[str], settle_seconds: float, top: int = 15, limit: int = 200, progress: Progress | None = None
) -> dict[str, Any]:
    """Replay the files through the function's own pipeline with the readiness observer attached."""
    pipeline, readiness = compose.report_pipeline(settle_seconds)
    replay = Replay(pipeline)
    for _ in replay.run(messages_from(paths)):
        if progress:
            progress.update(replay.tally.records)
    if progress:
        progress.finish(replay.tally.records)
    return readiness.figures(top=top, limit=limit)


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
    if html_path:
        lines.append(f"report written to {html_path}, every user who would break to {users_csv_path(html_path)}")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"
