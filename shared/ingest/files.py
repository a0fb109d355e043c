"""Where replay's and report's messages come from: files, directories, standard input and blobs, streamed.

Each input is recognised by its content, never by its name: gzip is inflated, a BOM
or UTF-16 is made plain UTF-8, then the first bytes say what holds the sign-ins:

- `[` : a JSON array (or several back to back) of records: streamed element by element;
- `{` on a first line that is JSON by itself: JSON lines, one message a line (Event Hub bodies,
  storage-archive records, Graph objects, Log Analytics rows);
- `{` on a first line that is not: pretty-printed JSON objects, one message each;
- a CSV header naming Log Analytics columns: the portal's CSV export, one message a row;
- anything else: lines, each rejected or read on its own.

`--input-format` forces the shape (and CSV). Nothing is read whole: memory holds a chunk
and the value being decoded, so `replay -` runs on an endless pipe. docs/inputs.md has
every shape and where it comes from.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import islice
from pathlib import Path
from typing import IO

import orjson

from shared.core.log_analytics import MARKERS
from shared.core.message import NOT_DECODED, Message, Origin, Unreadable
from shared.core.record import Shape, shape_of

from .chunks import GZIP_MAGIC, Peek, as_utf8, file_chunks, inflated, lines
from .csv_rows import csv_rows
from .json_stream import json_items
from .order import Spool

MAX_LINE = 1 << 28  # a line (or one JSON value) longer than this is cut and rejected, not held
CSV = "csv"
LOG_ANALYTICS_CSV = "log-analytics-csv"
ENTRA_CSV = "entra-portal-csv"
ENTRA_CSV_REASON = (
    "the Entra portal's CSV download is not read: it has no per-policy Conditional Access data; "
    "download JSON instead (docs/inputs.md)"
)
CSV_ROW_REASON = "CSV row could not be read"
_ENTRA_COLUMNS = frozenset({"Request ID", "Correlation ID"})
FORMATS = ("auto", Shape.EVENT_HUB, Shape.ARCHIVE, Shape.GRAPH, Shape.GRAPH_PAGE, Shape.LOG_ANALYTICS, CSV)


class InputError(Exception):
    """A path that cannot be read: replay stops with a clear message and a non-zero exit."""


@dataclass(frozen=True)
class Source:
    """One input: a name for people and rejections, and its bytes, opened when its turn comes."""

    name: str
    chunks: Callable[[], Iterable[bytes]]
    streamed: bool = False  # read as it comes (standard input, archive blobs), never spooled to sort by time


@dataclass
class InputStats:
    """What one input turned out to be and how many messages it gave (for the report's Input section)."""

    name: str
    shape: str = "empty"
    container: str = ""
    gzip: bool = False
    messages: int = 0
    sorted_by_time: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "shape": self.shape,
            "container": self.container,
            "gzip": self.gzip,
            "messages": self.messages,
            "sorted_by_time": self.sorted_by_time,
        }


def check_paths(paths: Iterable[str]) -> list[str]:
    checked = []
    for path in paths:
        if path != "-" and not Path(path).exists():
            raise InputError(f"no such file or directory: {path}")
        checked.append(path)
    return checked


def sources(paths: Iterable[str], stdin: IO[bytes] | None = None) -> Iterator[Source]:
    """Files, directories (every file below, in name order) and '-' for standard input, in order."""
    for path in paths:
        if path == "-":
            yield Source("<stdin>", partial(file_chunks, stdin or sys.stdin.buffer), streamed=True)
            continue
        target = Path(path)
        files = (
            sorted(p for p in target.rglob("*") if p.is_file() and not p.name.startswith("."))
            if target.is_dir()
            else [target]
        )
        for file in files:
            yield Source(str(file), partial(_file_chunks, file))


def _file_chunks(file: Path) -> Iterator[bytes]:
    try:
        handle = file.open("rb")
    except OSError as error:
        raise InputError(f"cannot read {file}: {error.strerror}") from None
    with handle:
        yield from file_chunks(handle)


def messages_from(
    paths: Iterable[str],
    stdin: IO[bytes] | None = None,
    input_format: str = "auto",
    inputs: list[InputStats] | None = None,
    order: str = "time",
) -> Iterator[Message]:
    """Every message in the paths (file exports oldest first, see `order`)."""
    return read_sources(sources(paths, stdin), input_format, inputs, order)


def read_sources(
    found: Iterable[Source],
    input_format: str = "auto",
    inputs: list[InputStats] | None = None,
    order: str = "time",
) -> Iterator[Message]:
    """The messages of every source. With `order="time"`, consecutive file exports (not Event Hub bodies, not
    streamed sources) are handed on together, oldest first (see order.py); `"input"` keeps file order."""
    spool = Spool()
    try:
        for source in found:
            stats = InputStats(source.name)
            if inputs is not None:
                inputs.append(stats)
            messages = read_source(source, input_format, stats)
            first = next(messages, None)
            if first is None:
                continue
            if order == "input" or source.streamed or stats.shape == Shape.EVENT_HUB:
                yield from spool.drain()
                yield first
                yield from messages
                continue
            stats.sorted_by_time = True
            spool.add(first)
            for message in messages:
                spool.add(message)
        yield from spool.drain()
    finally:
        spool.close()


def read_source(source: Source, input_format: str = "auto", stats: InputStats | None = None) -> Iterator[Message]:
    """One input's messages, its shape recognised from its first bytes (or forced)."""
    stats = stats or InputStats(source.name)
    raw = Peek(source.chunks())
    stats.gzip = raw.head(2).startswith(GZIP_MAGIC)
    text = Peek(as_utf8(inflated(raw)))
    container, shape = sniff(text.head(0, line=True, limit=MAX_LINE), input_format)
    stats.container, stats.shape = container, shape
    if container == CSV:
        yield from _csv_messages(text, source.name, stats, ENTRA_CSV_REASON if shape == ENTRA_CSV else None)
    elif container == "lines":
        yield from _line_messages(text, source.name, shape, stats)
    else:
        yield from _json_messages(text, source.name, input_format != "auto", stats)


def sniff(head: bytes, input_format: str = "auto") -> tuple[str, str]:
    """(container, shape) from the first line: `lines`, `json` (arrays, pretty objects) or `csv`."""
    text = head.lstrip()
    first = text.split(b"\n", 1)[0]
    if text[:1] not in (b"[", b"{") and _header_names(first) >= _ENTRA_COLUMNS:
        return CSV, ENTRA_CSV
    if input_format == CSV or (text[:1] not in (b"[", b"{") and _is_csv_header(first)):
        return CSV, LOG_ANALYTICS_CSV
    container, shape = _json_container(text)
    return container, shape if input_format == "auto" else input_format


def _json_container(text: bytes) -> tuple[str, str]:
    if not text:
        return "lines", "empty"
    if text.startswith(b"["):
        return "json", Shape.UNKNOWN  # named by its first element once it is read
    if not text.startswith(b"{"):
        return "lines", Shape.UNKNOWN
    try:
        return "lines", shape_of(orjson.loads(text.split(b"\n", 1)[0]))
    except orjson.JSONDecodeError:
        return "json", Shape.UNKNOWN  # pretty-printed


def _header_names(line: bytes) -> set[str]:
    return {cell.strip().strip('"').split(" [", 1)[0] for cell in line.decode("utf-8", "replace").split(",")}


def _is_csv_header(line: bytes) -> bool:
    names = _header_names(line)
    return len(names) > 1 and bool(names & MARKERS)


def _line_messages(chunks: Iterable[bytes], name: str, shape: str, stats: InputStats) -> Iterator[Message]:
    hint = shape if shape in (Shape.ARCHIVE, Shape.GRAPH) else None  # None: the Event Hub fast path
    for number, line in lines(chunks, MAX_LINE):
        stats.messages += 1
        yield Message(line, Origin(source=name, line=number), hint)


def _json_messages(chunks: Iterable[bytes], name: str, forced: bool, stats: InputStats) -> Iterator[Message]:
    for item in json_items(chunks, MAX_LINE):
        if not forced and stats.shape == Shape.UNKNOWN and item.document is not NOT_DECODED:
            stats.shape = shape_of(item.document)
        stats.messages += 1
        yield Message(item.raw, Origin(source=name, line=item.line), None, item.document)


def _csv_messages(
    chunks: Iterable[bytes], name: str, stats: InputStats, unreadable: str | None = None
) -> Iterator[Message]:
    for number, raw, row in csv_rows(lines(chunks, MAX_LINE)):
        stats.messages += 1
        document = row if row is not None and unreadable is None else Unreadable(unreadable or CSV_ROW_REASON)
        yield Message(raw, Origin(source=name, line=number), Shape.LOG_ANALYTICS, document)


def batches(messages: Iterable[Message], size: int) -> Iterator[list[Message]]:
    iterator = iter(messages)
    while batch := list(islice(iterator, size)):
        yield batch
