"""Exports in time order: sign-ins read from files are replayed oldest first, whatever order the file has.

Replay settles a sign-in once event time has moved 10 minutes past the last time it
was touched, so it needs its input roughly oldest first, as the stream is. Exports often
are not: Graph and the Entra portal list newest first, Log Analytics returns rows in no
set order, and interactive and non-interactive sign-ins come in separate files over the
same hours. Read as they are, a newest-first export never moves event time forward:
nothing settles before the end (every sign-in held in memory, no verdict early) and
detection sees its clock run backwards; a second file over the same hours finds the
first file's sign-ins settled, or already forgotten.

So consecutive file inputs (not Event Hub bodies, which are stream batches already in
stream order; not standard input, which may never end) are spooled to one temporary
file, indexed by event time (16 bytes a message in memory), and handed on sorted.
Memory stays bounded by the index; the spool costs one extra write and read of the data.
"""

from __future__ import annotations

import re
import struct
import tempfile
from array import array
from collections.abc import Iterable, Iterator
from typing import IO, Any

import orjson

from shared.core.message import NOT_DECODED, Message, Origin, Unreadable
from shared.core.timestamp import parse_time

_UNREADABLE = "\x00bindwatch-unreadable"  # a key no JSON export has: an Unreadable document in the spool
_HEADER = struct.Struct("<IIqB")  # body length, document length, line (-1 for none), has document
_CREATED = re.compile(rb'"createdDateTime"\s*:\s*"([^"\\]{1,64})"', re.IGNORECASE)
_TIME_FIELDS = ("createdDateTime", "CreatedDateTime", "CreatedDateTime [UTC]", "time", "TimeGenerated")


class Spool:
    """Messages written to a temporary file as they are read, then handed back oldest first."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="bindwatch-spool-")  # noqa: SIM115 (closed by close())
        self._times = array("d")
        self._offsets = array("q")
        self._sources: list[tuple[str, str | None]] = []  # (source, shape hint) of each run of messages

    def __len__(self) -> int:
        return len(self._times)

    def add(self, message: Message) -> None:
        document = message.document
        encoded = b""
        if isinstance(document, Unreadable):
            document = {_UNREADABLE: document.reason}
        if document is not NOT_DECODED:
            try:
                encoded = orjson.dumps(document)
            except TypeError:
                document = NOT_DECODED  # a number beyond 64 bits: the body is decoded again when read
        self._offsets.append(self._file.tell())
        self._times.append(event_time(message, document))
        if not self._sources or self._sources[-1] != (message.origin.source, message.shape):
            self._sources.append((message.origin.source, message.shape))
        line = message.origin.line if message.origin.line is not None else -1
        source = len(self._sources) - 1
        self._file.write(_HEADER.pack(len(message.body), len(encoded), line, document is not NOT_DECODED))
        self._file.write(source.to_bytes(4, "little"))
        self._file.write(message.body)
        self._file.write(encoded)

    def drain(self) -> Iterator[Message]:
        """Every spooled message, oldest first (equal times keep their order), then an empty spool."""
        order = sorted(range(len(self._times)), key=self._times.__getitem__)
        for index in order:
            yield self._read(self._offsets[index])
        self._file.seek(0)
        self._file.truncate()
        self._times, self._offsets, self._sources = array("d"), array("q"), []

    def _read(self, offset: int) -> Message:
        self._file.seek(offset)
        body_length, document_length, line, has_document = _HEADER.unpack(self._file.read(_HEADER.size))
        source, shape = self._sources[int.from_bytes(self._file.read(4), "little")]
        body = self._file.read(body_length)
        document = orjson.loads(self._file.read(document_length)) if has_document else NOT_DECODED
        if isinstance(document, dict) and len(document) == 1 and _UNREADABLE in document:
            document = Unreadable(document[_UNREADABLE])
        return Message(body, Origin(source=source, line=line if line >= 0 else None), shape, document)

    def close(self) -> None:
        self._file.close()


def event_time(message: Message, document: Any = NOT_DECODED) -> float:
    """A message's event time for ordering; -inf when it has none (it is handed on first, to be rejected).

    A line not yet decoded is searched for its createdDateTime first: decoding ~10 KB to read one field
    would cost more than the judging that follows."""
    if document is NOT_DECODED:
        found = _CREATED.search(message.body)
        parsed = parse_time(found.group(1).decode("utf-8", "replace")) if found else None
        if parsed is not None:
            return parsed
        try:
            document = orjson.loads(message.body)
        except orjson.JSONDecodeError:
            return float("-inf")
    if not isinstance(document, dict):
        return float("-inf")
    properties = document.get("properties")
    candidates = [properties.get("createdDateTime")] if isinstance(properties, dict) else []
    candidates.extend(document.get(name) for name in _TIME_FIELDS)
    for value in candidates:
        parsed = parse_time(value)
        if parsed is not None:
            return parsed
    return float("-inf")


def in_time_order(messages: Iterable[Message]) -> Iterator[Message]:
    """The messages oldest first, through a spool."""
    spool = Spool()
    try:
        for message in messages:
            spool.add(message)
        yield from spool.drain()
    finally:
        spool.close()
