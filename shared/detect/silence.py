"""Silences made at run time (`python -m shared silence add`): on-call mutes an alert in seconds, not by a redeploy.

Pure. A silence matches on the labels routes use (`routing.labels`: rule, severity, kind, enforcement and the
group's values; case-insensitive, several values of one label are alternatives) and lasts from when it was made
until its end or until someone expires it. Unlike the rules file's `[[silences]]`, which are judged at the event
time of each decision (replays of old logs honour them), a run-time silence is about now: the shell asks which are
active at the wall clock (`active`) and detection mutes what they match while they are. Where they are kept is
behind `SilenceStore` (Table Storage in Azure, memory in tests).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from .rules import LABELS, matches, parse_duration

MAX_DURATION = 30 * 86400.0  # a silence for longer than a month is a rules-file change, not an on-call action
MAX_TEXT = 500  # characters of an author or a reason: a log line, not a document
ID = re.compile(r"^[0-9a-f]{12}$")


class SilenceError(ValueError):
    """A silence that cannot be made or found: the message says which argument and why."""


@dataclass(frozen=True, slots=True)
class RuntimeSilence:
    """One mute: what it matches, from when to when, who made it and why (and who ended it early, if anyone)."""

    id: str
    match: Mapping[str, tuple[str, ...]]
    starts_at: float
    ends_at: float
    author: str
    reason: str
    expired_by: str = ""  # who ended it before its end ("" while it runs its course)

    def is_active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: Mapping[str, str]) -> bool:
        return matches(self.match, labels)

    def describe(self) -> str:
        """The matchers as on-call typed them: `app="Microsoft Teams" enforcement=report_only`."""
        return " ".join(f"{name}={_quoted(value)}" for name, values in self.match.items() for value in values)


class SilenceStore(Protocol):
    """Where run-time silences live; every instance reads the same ones."""

    def add(self, silence: RuntimeSilence) -> None: ...

    def silences(self) -> list[RuntimeSilence]:
        """Every silence kept (active, ended and not yet started)."""
        ...

    def expire(self, silence_id: str, at: float, by: str) -> RuntimeSilence | None:
        """End a silence now; None when there is none by that id."""
        ...


class MemorySilences:
    """A `SilenceStore` in memory: replay, and tests of detection."""

    def __init__(self) -> None:
        self._kept: dict[str, RuntimeSilence] = {}

    def add(self, silence: RuntimeSilence) -> None:
        self._kept[silence.id] = silence

    def silences(self) -> list[RuntimeSilence]:
        return list(self._kept.values())

    def expire(self, silence_id: str, at: float, by: str) -> RuntimeSilence | None:
        found = self._kept.get(silence_id)
        if found is None:
            return None
        self._kept[silence_id] = ended(found, at, by)
        return self._kept[silence_id]


def parse_matchers(pairs: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """`--match app="Microsoft Teams" --match enforcement=report_only` as a route's filters; a repeated label
    lists alternatives. At least one matcher: a silence of everything would hide the next real incident."""
    found: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip().strip('"').strip("'").strip()
        if not sep or not name or not value:
            raise SilenceError(f"--match {pair!r}: write it as label=value")
        if name not in LABELS:
            raise SilenceError(f"--match {pair!r}: unknown label {name!r} (use one of {', '.join(sorted(LABELS))})")
        if len(value) > MAX_TEXT:
            raise SilenceError(f"--match {name}=...: the value is longer than {MAX_TEXT} characters")
        found.setdefault(name, []).append(value)
    if not found:
        raise SilenceError("--match: give at least one label=value (a silence of everything is not allowed)")
    return {name: tuple(dict.fromkeys(values)) for name, values in found.items()}


def new_silence(
    match: Mapping[str, tuple[str, ...]], now: float, duration: str, author: str, reason: str
) -> RuntimeSilence:
    """A silence starting now; `duration` as the rules file writes them ("30m", "2h", "1d")."""
    try:
        seconds = parse_duration(duration)
    except ValueError as error:
        raise SilenceError(f"--for {duration!r}: {error}") from None
    if not 0 < seconds <= MAX_DURATION:
        raise SilenceError(f"--for {duration!r}: between a second and 30 days")
    return RuntimeSilence(
        id=secrets.token_hex(6),
        match=dict(match),
        starts_at=now,
        ends_at=now + seconds,
        author=_text("--author", author),
        reason=_text("--reason", reason),
    )


def ended(silence: RuntimeSilence, at: float, by: str) -> RuntimeSilence:
    """The silence ended at `at` (an end already past stays as it was)."""
    if silence.ends_at <= at:
        return silence
    return replace(silence, ends_at=max(at, silence.starts_at), expired_by=_text("--author", by))


def active(silences: Iterable[RuntimeSilence], now: float) -> tuple[RuntimeSilence, ...]:
    return tuple(s for s in silences if s.is_active(now))


def muted_by(silences: Sequence[RuntimeSilence], labels: Mapping[str, str]) -> RuntimeSilence | None:
    """The first of `silences` (those active now) that mutes an alert with these labels."""
    return next((s for s in silences if s.mutes(labels)), None)


def check_id(value: str) -> str:
    text = value.strip().lower()
    if not ID.match(text):
        raise SilenceError(f"silence id {value[:40]!r}: twelve hexadecimal characters, as `silence list` shows")
    return text


def _text(option: str, value: str) -> str:
    text = " ".join(value.split())
    if not text:
        raise SilenceError(f"{option}: must not be empty (say who and why: the next on-call reads it)")
    if len(text) > MAX_TEXT:
        raise SilenceError(f"{option}: longer than {MAX_TEXT} characters")
    return text


def _quoted(value: str) -> str:
    return f'"{value}"' if any(c.isspace() for c in value) else value
