"""Splitting a message body into its records' bytes without decoding the whole body.

A message is rejected whole only when it is not JSON at all. When one record in it
cannot be decoded (nesting thousands of levels deep, a number of thousands of
digits, bytes that are not UTF-8), the others must still be judged: so the
`records` array is cut into each record's exact bytes with a flat tokenizer (no
recursion, no decoding), and each record is then decoded on its own.
"""

from __future__ import annotations

import re

# JSON strings (with escapes) and the structural characters; everything else (numbers, literals, space) is skipped.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.DOTALL)


def split_records(body: bytes) -> list[bytes] | None:
    """The raw bytes of each element of the top-level `records` array, or None when the body has no such array
    or its structure is broken (truncated, unbalanced, text after the end): then it is not JSON at all."""
    start = _records_start(body)
    if start is None:
        return None
    spans: list[bytes] = []
    depth = 0
    element = start
    for token in _TOKEN.finditer(body, start):
        char = token.group()[:1]
        if char in b"[{":
            depth += 1
        elif char in b"]}":
            if depth == 0:
                _append(spans, body[element : token.start()])
                return spans if _closes(body, token.end()) else None
            depth -= 1
        elif char == b"," and depth == 0:
            _append(spans, body[element : token.start()])
            element = token.end()
    return None  # the array never closed


def _closes(body: bytes, offset: int) -> bool:
    """After the records array, the top-level object must close, with nothing but white space after it."""
    depth = 1
    for token in _TOKEN.finditer(body, offset):
        char = token.group()[:1]
        if char in b"[{":
            depth += 1
        elif char in b"]}":
            depth -= 1
            if depth == 0:
                return not body[token.end() :].strip()
    return False


def _records_start(body: bytes) -> int | None:
    """The offset just after the `[` of the top-level `"records": [`, found without decoding anything."""
    depth = 0
    seen = 0  # 1: the key "records" at depth 1; 2: and its colon
    for token in _TOKEN.finditer(body):
        text = token.group()
        if seen == 2:
            return token.end() if text == b"[" else None
        if seen == 1:
            seen = 2 if text == b":" else 0
            continue
        if text[:1] == b'"':
            seen = 1 if depth == 1 and text == b'"records"' else 0
        elif text in (b"[", b"{"):
            depth += 1
        elif text in (b"]", b"}"):
            depth -= 1
            if depth <= 0:
                return None
    return None


def _append(spans: list[bytes], raw: bytes) -> None:
    piece = raw.strip()
    if piece:
        spans.append(piece)
