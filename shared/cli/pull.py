"""`python -m shared pull`: a period of user sign-ins from Microsoft Graph, as JSON lines replay and report read."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from shared.app import compose
from shared.graph.client import GraphError
from shared.graph.pull import Pull, parse_instant
from shared.settings import ConfigurationError, Settings


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "pull", help="fetch interactive and non-interactive user sign-ins from Microsoft Graph (beta) as JSON lines"
    )
    parser.add_argument("--since", required=True, help="start of the period, ISO 8601 (UTC when no offset)")
    parser.add_argument("--until", required=True, help="end of the period (excluded), ISO 8601")
    parser.add_argument("--out", required=True, metavar="FILE", help="JSON lines, oldest first; resumable")
    parser.add_argument("--window-minutes", type=int, default=60, help="sign-ins fetched and sorted per step")
    return parser


def _progress(text: str) -> None:
    print(f"bindwatch: {text}", file=sys.stderr)


def run(args: argparse.Namespace, settings: Settings, out: IO[str], sleep: Any = None) -> int:
    """0 when the period is in the file; 1 when Graph refused or kept failing (the same command resumes)."""
    try:
        since, until = parse_instant(args.since), parse_instant(args.until)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    if until <= since:
        raise ConfigurationError("--until must be after --since")
    if not 1 <= args.window_minutes <= 24 * 60:
        raise ConfigurationError("--window-minutes must be between 1 and 1440")
    client = compose.graph_client(settings, sleep)
    pull = Pull(
        client, settings.graph_url, Path(args.out), progress=lambda text: print(f"bindwatch: {text}", file=sys.stderr)
    )
    try:
        state = pull.run(since, until, timedelta(minutes=args.window_minutes))
    except GraphError as error:
        print(f"bindwatch: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bindwatch: interrupted; run the same command to resume", file=sys.stderr)
        return 130
    finally:
        client.http.close()
    waited = sum(client.waits)
    print(
        f"{state.signins} sign-ins from {state.since} to {state.until} in {args.out}"
        + (f" (waited {waited:.0f} s for Graph's throttling and retries)" if waited else ""),
        file=out,
    )
    return 0
