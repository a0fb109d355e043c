"""Offline replay: message files in, verdicts (and alerts) out, through the function's own pipeline."""

from __future__ import annotations

import base64
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any

import orjson

from .pipeline import Outcome, Pipeline, Tally
from .record import Message, Origin, Rejection, decode

WHOLE_FILE_LIMIT = 64 * 1024 * 1024  # larger files are read as JSON lines, streaming


class InputError(Exception):
    """A path that cannot be read: replay stops with a clear message and a non-zero exit."""


def check_paths(paths: Iterable[str]) -> list[str]:
    checked = []
    for path in paths:
        if path != "-" and not Path(path).exists():
            raise InputError(f"no such file or directory: {path}")
        checked.append(path)
    return checked


def messages_from(paths: Iterable[str], stdin: IO[bytes] | None = None) -> Iterator[Message]:
    """Every message body in the paths, in order: files, directories (name order) and '-' for stdin."""
    for path in paths:
        if path == "-":
            yield from _messages_in(_read_stdin(stdin), "<stdin>")
            continue
        target = Path(path)
        files = (
            sorted(p for p in target.rglob("*") if p.is_file() and not p.name.startswith("."))
            if target.is_dir()
            else [target]
        )
        for file in files:
            yield from _messages_in_file(file)


def _read_stdin(stdin: IO[bytes] | None) -> bytes:
    return (stdin or sys.stdin.buffer).read()


def _messages_in_file(file: Path) -> Iterator[Message]:
    try:
        size = file.stat().st_size
        if size <= WHOLE_FILE_LIMIT:
            yield from _messages_in(file.read_bytes(), str(file))
            return
        with file.open("rb") as handle:
            yield from _lines(handle, str(file))
    except OSError as error:
        raise InputError(f"cannot read {file}: {error.strerror}") from None


def _messages_in(data: bytes, name: str) -> Iterator[Message]:
    """One body for a file that is one JSON document (pretty-printed or not), else one body per line."""
    if b"\n" in data.strip():
        try:
            document = decode(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            document = None
        if isinstance(document, dict):
            yield Message(data, Origin(source=f"{name}"))
            return
    yield from _lines(data.splitlines(), name)


def _lines(lines: Iterable[bytes], name: str) -> Iterator[Message]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield Message(line, Origin(source=f"{name}:{number}"))


def batches(messages: Iterable[Message], size: int) -> Iterator[list[Message]]:
    iterator = iter(messages)
    while batch := list(islice(iterator, size)):
        yield batch


@dataclass
class Replay:
    """Drives the pipeline over files and keeps what the summary needs."""

    pipeline: Pipeline
    batch_size: int = 10
    tally: Tally = field(default_factory=Tally)
    last_verdicts: dict[str, str] = field(default_factory=dict)
    alerts: Counter[str] = field(default_factory=Counter)

    def run(self, messages: Iterable[Message]) -> Iterator[Outcome]:
        for batch in batches(messages, self.batch_size):
            yield self._account(self.pipeline.ingest(batch))
        yield self._account(self.pipeline.drain())

    def _account(self, outcome: Outcome) -> Outcome:
        self.tally.add(outcome.tally)
        for line in outcome.lines:
            if line.get("type") == "verdict":
                self.last_verdicts[line["correlation_id"]] = line["verdict"]
            elif line.get("type") == "alert":
                self.alerts[line.get("status", "")] += 1
        return outcome

    def summary(self) -> dict[str, Any]:
        verdicts = Counter(self.last_verdicts.values())
        tally = self.tally
        return {
            "type": "summary",
            "messages": tally.messages,
            "records": tally.records,
            "skipped": sum(tally.skipped.values()),
            "rejected": tally.rejected,
            "duplicates": tally.duplicates,
            "requests": tally.requests,
            "signins": len(self.last_verdicts),
            "bound": verdicts["bound"],
            "unbound": verdicts["unbound"],
            "unevaluated": verdicts["unevaluated"],
            "revised": tally.reopened,
            "skipped_by_category": dict(sorted(tally.skipped.items())),
            "alerts": dict(sorted(self.alerts.items())),
        }


def rejection_record(rejection: Rejection) -> dict[str, Any]:
    """A rejected item as one JSON line: the reason, where it came from, and its raw bytes."""
    origin = rejection.origin
    record: dict[str, Any] = {
        "reason": rejection.reason,
        "source": origin.source,
        "partition": origin.partition,
        "offset": origin.offset,
        "sequence_number": origin.sequence_number,
        "record_index": rejection.index,
    }
    try:
        record["raw"] = rejection.raw.decode("utf-8")
    except UnicodeDecodeError:
        record["raw_base64"] = base64.b64encode(rejection.raw).decode()
    return record


def dumps(line: dict[str, Any]) -> str:
    return orjson.dumps(line, default=str).decode()
