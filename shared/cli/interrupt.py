"""Ctrl-C as an end of input: replay and report stop reading, settle what is open and print the summary.

A signal that lands while the input is being read (usually a blocking read on a pipe)
ends the input at once; one that lands while a batch is judged lets that batch finish,
so the store is never left half-updated. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable, Iterator
from types import FrameType, TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


class _EndOfInput(Exception):
    """Raised inside a read to end the input."""


class Interrupt:
    def __init__(self) -> None:
        self.requested = False
        self._reading = False
        self._previous: Any = None

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():  # only the main thread may handle signals
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self._reading:
            raise _EndOfInput

    def guard(self, items: Iterable[T]) -> Iterator[T]:
        """The items until the input ends or Ctrl-C is pressed."""
        iterator = iter(items)
        while not self.requested:
            self._reading = True
            try:
                item = next(iterator)
            except (StopIteration, _EndOfInput):
                return
            finally:
                self._reading = False
            yield item
