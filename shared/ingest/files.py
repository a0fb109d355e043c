"""Where replay's messages come from: files, directories and standard input, in order.

A file holds one message body (pretty-printed or not) or one body a line (JSON
lines); a directory is read in name order; `-` is standard input.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO

from shared.core.message import Message, Origin
from shared.core.record import decode

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
