"""The input options replay and report share, the exit codes they end with, and what they say about the input."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import IO, Any

from shared.app import compose
from shared.core.message import Message
from shared.ingest.files import FORMATS, Source, check_paths, read_sources, sources
from shared.ingest.replay import Replay
from shared.settings import ConfigurationError, Settings

EXIT_NOTHING_JUDGED = 3  # the input held no record that could be judged (empty, all rejected or all skipped)
EXIT_INTERRUPTED = 130  # Ctrl-C: what was read is settled and summarised, then this code (128 + SIGINT)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input-format",
        choices=FORMATS,
        default="auto",
        help="force the input's shape instead of recognising it from its first bytes (see docs/inputs.md)",
    )
    parser.add_argument(
        "--order",
        choices=("time", "input"),
        default="time",
        help="time (default): file exports are replayed oldest first, whatever their order; input: as they are",
    )
    parser.add_argument(
        "--from-storage",
        action="append",
        default=[],
        metavar="URL",
        help="read a diagnostic setting's storage archive: an account, container or folder URL (repeatable)",
    )


def input_sources(args: argparse.Namespace, settings: Settings) -> Iterator[Source]:
    """The PATHs, then the archives named by --from-storage, in order (checked now, read later)."""
    paths = check_paths(args.paths)
    if not paths and not args.from_storage:
        raise ConfigurationError("give at least one PATH ('-' for standard input) or --from-storage URL")
    return _sources(paths, args.from_storage, settings)


def _sources(paths: list[str], urls: list[str], settings: Settings) -> Iterator[Source]:
    yield from sources(paths)
    for url in urls:
        yield from compose.archive_sources(settings, url)


def messages(args: argparse.Namespace, settings: Settings, replay: Replay) -> Iterator[Message]:
    return read_sources(input_sources(args, settings), args.input_format, replay.inputs, args.order)


def input_lines(section: dict[str, Any]) -> list[str]:
    """The Input section for people: what was read, skipped and rejected, and the expected shapes if needed."""
    shapes = ", ".join(f"{i['name']} ({_shape(i)}: {_items(i['messages'])})" for i in section["inputs"])
    lines = [
        f"read: {shapes or 'nothing'}",
        f"{section['records']} records judged ({section['duplicates']} duplicate copies), "
        f"{section['skipped']} skipped{_counts(section['skipped_by_category'])}, "
        f"{section['rejected']} rejected{_counts(section['rejected_by_reason'])}"
        + (f", {section['policy_changes']} token protection policy changes" if section.get("policy_changes") else ""),
    ]
    if section["expected_shapes"]:
        verdict = "most of the input was rejected" if section["mostly_rejected"] else "no record could be judged"
        lines.append(f"{verdict}; bindwatch reads:")
        lines.extend(f"  - {shape}" for shape in section["expected_shapes"])
        lines.append("  (--input-format forces a shape; docs/inputs.md shows each)")
    return lines


def _shape(stats: dict[str, Any]) -> str:
    notes = [stats["shape"]] + ["gzip"] * stats["gzip"] + ["sorted by time"] * stats["sorted_by_time"]
    return ", ".join(notes)


def _items(count: int) -> str:
    return f"{count} item" if count == 1 else f"{count} items"


def _counts(counts: dict[str, int]) -> str:
    return f" ({', '.join(f'{name}: {n}' for name, n in counts.items())})" if counts else ""


def exit_code(replay: Replay, interrupted: bool, err: IO[str] | None = None) -> int:
    """130 after Ctrl-C, 3 when nothing could be judged (said on standard error), else 0."""
    if interrupted:
        return EXIT_INTERRUPTED
    if replay.tally.records == 0 and not replay.tally.changes:  # an audit log alone is read, not "nothing"
        tally = replay.tally
        print(
            f"bindwatch: no record could be judged ({tally.rejected} rejected, {sum(tally.skipped.values())} skipped)",
            file=err or sys.stderr,
        )
        return EXIT_NOTHING_JUDGED
    return 0
