"""`python -m shared verdicts`: every stored sign-in with its verdict, as replay prints them."""

from __future__ import annotations

import argparse
from typing import IO, Any

from shared.app import compose
from shared.core.verdict import verdict_line
from shared.settings import Settings

from .output import TABLE_HEADER, dumps, row


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser = commands.add_parser("verdicts", help="export every sign-in in the store with its verdict")
    parser.add_argument("--store", choices=["table"], default="table", help="the store to read (Table Storage)")
    parser.add_argument("--format", choices=["jsonl", "table"], default="table")
    return parser


def run(args: argparse.Namespace, settings: Settings, out: IO[str]) -> int:
    """Every sign-in in the store, in replay's verdict format, so an admin can export them."""
    store = compose.signin_store(settings, args.store)
    table = args.format == "table"
    if table:
        print(TABLE_HEADER, file=out)
    count = 0
    for signin in store.signins():
        line = verdict_line(signin)
        print(row(line) if table else dumps(line), file=out)
        count += 1
    if table:
        print(f"\n{count} sign-ins", file=out)
    return 0
