"""Schema versions of what bindwatch keeps: every stored row and dead-letter line says which format it is in.

An upgrade must keep state. So a release reads every older format: each step up is a pure function that turns a row
of version n into version n+1, applied in place as the row is read. A row of a version newer than the code knows
(written by the next release while this one still runs during a deployment, or left behind by a rollback) is
refused, never guessed at: the caller leaves it untouched and says so in one log line. Rows written before versions
were marked (up to commit 1aa6fb3) carry no mark: they are version 1, the format that commit wrote.

Pure, so every layer that keeps something can use it: the storage tables mark and check their entities, the
dead-letter trail its lines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "schema"  # the property (a table row) or key (a JSON line) that holds the version
UNMARKED = 1  # the version of a row written before versions were marked

Upgrade = Callable[[MutableMapping[str, Any]], None]  # changes a row of version n, in place, into version n+1


class Refused(ValueError):
    """A row this code must not read: its format is newer than the code, or its mark is not a version at all."""

    def __init__(self, kind: str, found: object, known: int) -> None:
        super().__init__(f"{kind} row in schema {found!r}: this release reads schema {UNMARKED} to {known}")
        self.kind = kind
        self.found = found
        self.known = known


@dataclass(frozen=True)
class Schema:
    """The format of one kind of row: the version this code writes, and how each older version is brought up."""

    kind: str  # names the rows in errors and logs ("signins", "outbox", ...)
    version: int = 1
    upgrades: Mapping[int, Upgrade] = field(default_factory=dict)  # n -> makes a row of version n into n + 1

    def __post_init__(self) -> None:
        missing = [n for n in range(UNMARKED, self.version) if n not in self.upgrades]
        if missing:
            raise ValueError(f"{self.kind}: no upgrade from schema {missing}: every older row must stay readable")

    def mark(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The row as written: a copy carrying this code's version."""
        return {**row, SCHEMA: self.version}

    def version_of(self, row: Mapping[str, Any]) -> object:
        """The row's mark as stored (unmarked rows, or a column selected but absent, are version 1); not necessarily
        a version this code reads."""
        found = row.get(SCHEMA)
        return UNMARKED if found is None else found

    def readable(self, row: Mapping[str, Any]) -> bool:
        found = self.version_of(row)
        return _is_version(found) and found <= self.version  # type: ignore[operator]

    def read(self, row: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """The same row, upgraded in place to this code's version; Refused when it is newer or its mark unreadable."""
        found = self.version_of(row)
        if not self.readable(row):
            raise Refused(self.kind, found, self.version)
        for version in range(int(found), self.version):  # type: ignore[call-overload]
            self.upgrades[version](row)
            row[SCHEMA] = version + 1
        return row


def _is_version(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= UNMARKED
