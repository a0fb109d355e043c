"""Bytes as they arrive: chunks from a file, a pipe or a blob; gzip inflated and text made UTF-8 on the way.

Everything here streams: memory holds a chunk or two, never the input, so an endless
pipe is read as it comes and a gzip bomb cannot inflate past one chunk at a time.
"""

from __future__ import annotations

import codecs
import zlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO

CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"


def file_chunks(handle: BinaryIO, size: int = CHUNK) -> Iterator[bytes]:
    """`read1` returns what a pipe holds now instead of waiting for a full chunk: lines flow as they come."""
    read = getattr(handle, "read1", handle.read)
    while chunk := read(size):
        yield chunk


class Peek:
    """An iterator of chunks that can look ahead without losing what it looked at."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._head = b""
        self._done = False

    def head(self, size: int, line: bool = False, limit: int = 1 << 28) -> bytes:
        """At least `size` bytes (or, with `line`, up to the first non-blank line's end), fewer only at the end."""
        while not self._done and len(self._head) < limit and not self._enough(size, line):
            chunk = next(self._chunks, None)
            if chunk is None:
                self._done = True
            else:
                self._head += chunk
        return self._head

    def _enough(self, size: int, line: bool) -> bool:
        if not line:
            return len(self._head) >= size
        stripped = self._head.lstrip()
        return b"\n" in stripped

    def __iter__(self) -> Iterator[bytes]:
        if self._head:
            yield self._head
            self._head = b""
        yield from self._chunks


def inflated(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """gzip inflated as it comes (any number of members, as `cat a.gz b.gz` makes); other data as it is.

    Compressed bytes that do not inflate are handed on as they are, on a line of their own, so they are
    rejected (and kept) rather than silently dropped.
    """
    peek = Peek(chunks)
    if not peek.head(2).startswith(GZIP_MAGIC):
        yield from peek
        return
    stream = iter(peek)
    inflater = zlib.decompressobj(wbits=31)
    for chunk in stream:
        data = chunk
        while data:
            try:
                out = inflater.decompress(data, CHUNK)
            except zlib.error:
                yield b"\n" + data
                yield from stream
                return
            if out:
                yield out
            data = inflater.unconsumed_tail
            if inflater.eof:
                data = inflater.unused_data
                if data and not data.startswith(GZIP_MAGIC[:1]):
                    return  # trailing padding after the last member
                inflater = zlib.decompressobj(wbits=31)  # the next member (it may start in the next chunk)
    out = inflater.flush()  # a cut-off member: what it held so far (its last line will not parse)
    if out:
        yield out


def as_utf8(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """UTF-8 without a BOM: a UTF-8 BOM is dropped, UTF-16 (Windows PowerShell 5.1's `Out-File`) transcoded."""
    peek = Peek(chunks)
    head = peek.head(4)
    encoding = _utf16(head)
    if encoding is None:
        skip = 3 if head.startswith(codecs.BOM_UTF8) else 0
        for chunk in peek:
            data, skip = chunk[skip:], 0
            if data:
                yield data
        return
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    for chunk in peek:
        text = decoder.decode(chunk)
        if text:
            yield text.encode("utf-8")
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail.encode("utf-8")


def _utf16(head: bytes) -> str | None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # the codec reads the BOM and drops it
    if len(head) >= 4 and head[1] == 0 and head[3] == 0 and head[0] and head[2]:
        return "utf-16-le"
    if len(head) >= 4 and head[0] == 0 and head[2] == 0 and head[1] and head[3]:
        return "utf-16-be"
    return None


def lines(chunks: Iterable[bytes], max_line: int) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for each non-blank line; a line longer than `max_line` is cut into pieces."""
    rest = b""
    number = 0
    for chunk in chunks:
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        for part in parts:
            number += 1
            if part.strip():
                yield number, part
        while len(rest) > max_line:  # no newline in sight: hand it on (it will be rejected) rather than hoard it
            yield number + 1, rest[:max_line]
            rest = rest[max_line:]
    if rest.strip():
        yield number + 1, rest
