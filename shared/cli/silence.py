"""`python -m shared silence add|list|expire`: mute alerts at run time, with an author, a reason and an end.

Silences live in the deployment's Table Storage; every instance of the function honours them within a minute.
`silence add` prints the new silence's id, which `silence expire` takes.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import IO, Any

from shared.app import compose
from shared.app.identity import signed_in_author
from shared.detect.silence import RuntimeSilence, SilenceError, check_id, new_silence, parse_matchers
from shared.settings import Settings
from shared.telemetry import log_event


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser = commands.add_parser("silence", help="mute alerts now (Table Storage), list or expire silences")
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="mute the alerts whose labels match, from now for a while")
    add.add_argument(
        "--match",
        action="append",
        required=True,
        metavar="LABEL=VALUE",
        help='a label as routes match it (app="Microsoft Teams", enforcement=report_only, rule, severity, ...); '
        "repeat for more (every label must match; one label given twice matches either value)",
    )
    add.add_argument("--for", dest="duration", required=True, help="how long: 30m, 2h, 1d (at most 30d)")
    add.add_argument("--reason", required=True, help="why: the next on-call reads it")
    add.add_argument("--author", help="who (default: the signed-in identity)")
    listing = actions.add_parser("list", help="the silences in force (and with --all, ended ones)")
    listing.add_argument("--all", action="store_true", help="also ended and expired silences (kept 30 days)")
    expire = actions.add_parser("expire", help="end a silence now")
    expire.add_argument("id", help="the silence's id, as `silence list` shows it")
    expire.add_argument("--author", help="who ends it (default: the signed-in identity)")
    return parser


def run(args: argparse.Namespace, settings: Settings, out: IO[str]) -> int:
    """A bad argument raises SilenceError, which `main` prints and exits 2 on."""
    actions = {"add": _add, "expire": _expire, "list": _list}
    return actions[args.action](args, settings, out)


def _add(args: argparse.Namespace, settings: Settings, out: IO[str]) -> int:
    match = parse_matchers(args.match)
    author = args.author or signed_in_author(settings)
    silence = new_silence(match, time.time(), args.duration, author, args.reason)
    compose.silence_store(settings).add(silence)
    log_event("silence_added", id=silence.id, match=silence.describe(), ends_at=silence.ends_at, author=author)
    print(silence.id, file=out)
    return 0


def _expire(args: argparse.Namespace, settings: Settings, out: IO[str]) -> int:
    silence_id = check_id(args.id)
    author = args.author or signed_in_author(settings)
    silence = compose.silence_store(settings).expire(silence_id, time.time(), author)
    if silence is None:
        raise SilenceError(f"no silence {silence_id} (silence list --all shows them)")
    log_event("silence_expired", id=silence.id, by=author)
    print(f"{silence.id} ended {_when(silence.ends_at)}", file=out)
    return 0


def _list(args: argparse.Namespace, settings: Settings, out: IO[str]) -> int:
    store = compose.silence_store(settings)
    now = time.time()
    store.forget_ended(now)
    shown = sorted(
        (s for s in store.silences() if args.all or s.ends_at > now), key=lambda s: (s.ends_at <= now, s.starts_at)
    )
    for silence in shown:
        print(_line(silence, now), file=out)
    print(f"{len(shown)} silence(s)", file=out)
    return 0


def _line(silence: RuntimeSilence, now: float) -> str:
    state = "active" if silence.is_active(now) else "ended"
    ended = f" (expired by {silence.expired_by})" if silence.expired_by else ""
    return (
        f"{silence.id}  {state:<6}  until {_when(silence.ends_at)}{ended}  {silence.describe()}  "
        f"by {silence.author}: {silence.reason}"
    )


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")
