"""Progress on a terminal for long work (replay, report): records, rate, elapsed; nothing when not a TTY.

One line on standard error, rewritten in place at most twice a second, so a
pipe or a log file never gets it (the summary at the end is printed anyway).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO


class Progress:
    """`update(records)` as work goes on, `finish()` once; silent unless the stream is a terminal."""

    def __init__(
        self,
        label: str,
        stream: IO[str] | None = None,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        every: float = 0.5,
    ) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = _is_tty(self.stream) if enabled is None else enabled
        self.clock, self.every = clock, every
        self.started = clock()
        self._last = float("-inf")
        self._shown = False

    def update(self, records: int) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if now - self._last < self.every:
            return
        self._last = now
        self._write(records, now)

    def finish(self, records: int) -> None:
        if not self.enabled:
            return
        self._write(records, self.clock())
        self.stream.write("\n")
        self.stream.flush()

    def _write(self, records: int, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = records / elapsed
        self.stream.write(f"\r\033[Kbindwatch: {self.label} {records:,} records, {rate:,.0f}/s, {elapsed:.1f} s")
        self.stream.flush()
        self._shown = True


def _is_tty(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
