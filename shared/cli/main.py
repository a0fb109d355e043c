"""`python -m shared ...`: the command line for the people who act on the verdicts."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import IO

from azure.core.exceptions import AzureError

from shared.detect.silence import SilenceError
from shared.ingest.files import InputError
from shared.settings import ConfigurationError, Settings, load_settings

from . import alerts, eventhub, guardrail, pull, replay, report, silence, verdicts
from .paths import OutputPathError

Command = Callable[[argparse.Namespace, Settings, IO[str]], int]


class DefaultsFormatter(argparse.HelpFormatter):
    """--help shows each option's default, where it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared", description="bindwatch: Token Protection verdicts")
    commands = parser.add_subparsers(dest="command", required=True)
    replay.add_parser(commands)
    verdicts.add_parser(commands)
    report.add_parser(commands)
    pull.add_parser(commands)
    eventhub.add_send_parser(commands)
    eventhub.add_consume_parser(commands)
    silence.add_parser(commands)
    alerts.add_parser(commands)
    guardrail.add_parser(commands)
    for command in commands.choices.values():
        command.formatter_class = DefaultsFormatter
    return parser


COMMANDS: dict[str, Command] = {
    "replay": replay.run,
    "verdicts": verdicts.run,
    "report": report.run,
    "pull": pull.run,
    "send": lambda args, settings, out: eventhub.run_send(args, settings),
    "consume": lambda args, settings, out: eventhub.run_consume(args, settings),
    "silence": silence.run,
    "alerts": alerts.run,
    "guardrail": guardrail.run,
}


def main(argv: Sequence[str] | None = None, stdout: IO[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="bindwatch: %(message)s")
    out = stdout or sys.stdout
    try:
        settings = load_settings()
        return COMMANDS[args.command](args, settings, out)
    except (ConfigurationError, InputError, OutputPathError, SilenceError) as error:
        print(f"bindwatch: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bindwatch: interrupted", file=sys.stderr)
        return 130
    except AzureError as error:
        # The type and status only: SDK messages can carry account URLs.
        status = getattr(error, "status_code", None)
        print(
            f"bindwatch: storage failed: {type(error).__name__}" + (f" (HTTP {status})" if status else ""),
            file=sys.stderr,
        )
        return 1
