"""Rows of a CSV export (Log Analytics' "Export to CSV"), each with its original bytes.

Cells hold commas, doubled quotes and, for dynamic columns, JSON text that can run over
several lines, so rows are read with the csv module, never split on lines; each row
keeps the lines it was read from, for a rejection to carry.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator

csv.field_size_limit(min(sys.maxsize, 1 << 30))  # a pretty-printed ConditionalAccessPolicies cell is large


def csv_rows(lines: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, bytes, dict[str, str] | None]]:
    """(first line number, raw bytes, the row by column name) for every row after the header.

    A row the csv module cannot read comes with None instead of a dict (it will be rejected, bytes and all).
    """
    consumed: list[tuple[int, bytes]] = []

    def text() -> Iterator[str]:
        for number, line in lines:
            consumed.append((number, line))
            yield line.decode("utf-8", "surrogateescape").rstrip("\r") + "\n"

    reader = csv.reader(text(), strict=False)
    header = _next(reader)
    if header is None:
        return
    names = [name.strip().lstrip("\ufeff") for name in header]
    consumed.clear()
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            row = None
        if not consumed:
            return
        number, raw = consumed[0][0], b"\n".join(line for _, line in consumed)
        consumed.clear()
        if row == []:
            continue
        yield number, raw, dict(zip(names, row, strict=False)) if row is not None else None


def _next(reader: Iterator[list[str]]) -> list[str] | None:
    try:
        return next(reader)
    except (StopIteration, csv.Error):
        return None
