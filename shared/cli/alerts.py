"""`python -m shared alerts`: what is firing, since when, in which incident, where it was sent, and what mutes it."""

from __future__ import annotations

import argparse
import time
from typing import IO, Any

from shared.app import compose
from shared.detect.silence import active
from shared.settings import Settings
from shared.views.firing import firing, text_lines


def add_parser(commands: Any) -> argparse.ArgumentParser:
    return commands.add_parser("alerts", help="list the alerts firing now (Table Storage) and where they were sent")


def run(args: argparse.Namespace, settings: Settings, out: IO[str]) -> int:
    parts = compose.alert_overview(settings)
    silences = active(parts.silences.silences(), time.time())
    rows = firing(parts.detection.load_states(), parts.outbox.entries(), silences, parts.rules)
    for line in text_lines(rows):
        print(line, file=out)
    return 0
