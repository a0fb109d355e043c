"""`python -m shared guardrail`: what switching each token protection policy On would block, and the switches
watched (Table Storage: what the function counted)."""

from __future__ import annotations

import argparse
from typing import IO, Any

import orjson

from shared.app import compose
from shared.settings import Settings
from shared.views.rollout import overview, text_lines


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "guardrail", help="each token protection policy's prediction, and the switches watched (Table Storage)"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    return parser


def run(args: argparse.Namespace, settings: Settings, out: IO[str]) -> int:
    view = overview(compose.guardrail_state(settings))
    if args.format == "json":
        print(orjson.dumps(view).decode(), file=out)
        return 0
    for line in text_lines(view):
        print(line, file=out)
    return 0
