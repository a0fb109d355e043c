"""JSON values out of a stream of bytes, one at a time: arrays are split into their elements.

Exports come as one pretty-printed array of a gigabyte (the portal's download), as
arrays glued together (`[...][...]`, one per page, as some exporters write), as
pretty-printed objects one after another, or as one object per line. This reader takes
them all with memory bounded by the largest single element: the standard library's
scanner decodes one value at a time from a sliding text buffer (`raw_decode`), so
every element comes out both decoded and as its original bytes (what a rejection
keeps). A broken element is handed on as raw bytes (the line it starts on and the
following lines up to the next line that opens a value), so one bad record costs one
rejection and reading goes on.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from shared.core.message import NOT_DECODED

_DECODER = json.JSONDecoder()
_BETWEEN = re.compile(r"[\s,]*")  # whitespace, and the commas between elements
_COMPACT = 1 << 20
_NUMBER_TAIL = re.compile(r"[0-9.eE+\-]*")


@dataclass(frozen=True, slots=True)
class Item:
    """One value (or one broken stretch, with `document` NOT_DECODED) and the line it starts on."""

    raw: bytes
    document: Any
    line: int


class _Broken(Exception):
    """The value at the cursor does not decode even with all the data there is (or may be)."""


class _Text:
    """A sliding window of decoded text over the chunks, with the line number of its start."""

    def __init__(self, chunks: Iterable[bytes], max_value: int) -> None:
        self._chunks = iter(chunks)
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.max_value = max_value
        self._line = 1
        self._counted = 0

    def more(self, at_least: int = 1) -> bool:
        """Read until `at_least` more characters arrived; False at the end of the input."""
        if self.eof:
            return False
        if self.pos > _COMPACT:
            self.line_at(self.pos)
            self.buf, self._counted, self.pos = self.buf[self.pos :], 0, 0
        grown = 0
        while grown < at_least:
            chunk = next(self._chunks, None)
            text = self._decoder.decode(chunk or b"", final=chunk is None)
            self.buf += text
            grown += len(text)
            if chunk is None:
                self.eof = True
                return grown > 0
        return True

    def line_at(self, pos: int) -> int:
        self._line += self.buf.count("\n", self._counted, pos)
        self._counted = pos
        return self._line

    def skip_between(self) -> bool:
        """Move past whitespace and commas; False when nothing is left."""
        while True:
            self.pos = _BETWEEN.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf) or not self.more():
                return self.pos < len(self.buf)

    def value(self) -> tuple[Any, int]:
        """Decode the value at the cursor, reading more as long as it may still be incomplete."""
        while True:
            try:
                document, end = _DECODER.raw_decode(self.buf, self.pos)
            except (json.JSONDecodeError, RecursionError):
                document, end = NOT_DECODED, -1
            # A number may have been cut in two by a chunk ("10." | "5"): a number is complete only when
            # something other than number characters follows it, or the input has ended.
            complete = end != -1 and (
                self.eof or not isinstance(document, int | float) or _NUMBER_TAIL.fullmatch(self.buf, end) is None
            )
            if complete:
                return document, end
            if self.eof or len(self.buf) - self.pos > self.max_value:
                raise _Broken
            self.more(at_least=max(len(self.buf) - self.pos, 1 << 16))

    def broken(self) -> int:
        """The end of a broken stretch: the next line that opens an object or array, or the size limit."""
        pos = self.pos
        while True:
            newline = self.buf.find("\n", pos)
            if newline == -1:
                if len(self.buf) - self.pos > self.max_value or not self.more():
                    return len(self.buf)
                continue
            pos = newline + 1
            nxt = _BETWEEN.match(self.buf, pos).end()  # type: ignore[union-attr]
            if nxt < len(self.buf) and self.buf[nxt] in "[{":
                return pos
            if nxt >= len(self.buf) and not self.more():
                return len(self.buf)

    def raw(self, start: int, end: int) -> bytes:
        return self.buf[start:end].encode("utf-8", "surrogateescape")


def json_items(chunks: Iterable[bytes], max_value: int = 1 << 28) -> Iterator[Item]:
    """Every top-level value; a top-level array (or several) yields its elements instead of itself."""
    text = _Text(chunks, max_value)
    in_array = False
    while text.skip_between():
        char = text.buf[text.pos]
        if char == "[" and not in_array:
            in_array = True
            text.pos += 1
            continue
        if char == "]" and in_array:
            in_array = False
            text.pos += 1
            continue
        start = text.pos
        line = text.line_at(start)
        try:
            document, end = text.value()
        except _Broken:
            end = text.broken()
            document = NOT_DECODED
        text.pos = end
        yield Item(text.raw(start, end), document, line)
