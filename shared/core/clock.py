"""Time at the edge: the wall clock behind a small interface, and the event clock built from it.

Event time (`createdDateTime`) drives settling and windows, never the wall clock,
so a replay of last week gives what live traffic gave. The wall clock only
extrapolates the event clock while the stream is quiet, and caps how far a
record dated in the future may push it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

# A record dated further than this past the wall clock is not allowed to move the event clock.
FUTURE_TOLERANCE = 300.0


@dataclass(slots=True)
class ClockState:
    """The shared event clock: the latest event time seen, and the wall time it was seen at."""

    watermark: float
    wall: float


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class FixedClock:
    """A clock tests set by hand."""

    def __init__(self, at: float) -> None:
        self.at = at

    def now(self) -> float:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += seconds


def advance(state: ClockState | None, event_times: list[float], wall: float) -> ClockState | None:
    """The event clock after a batch: the latest plausible event time seen so far."""
    plausible = [t for t in event_times if t <= wall + FUTURE_TOLERANCE]
    if not plausible:
        return state
    latest = max(plausible)
    if state is not None and latest <= state.watermark:
        return state
    return ClockState(watermark=latest, wall=wall)


def idle_clock(state: ClockState | None, wall: float) -> float | None:
    """The event clock when no record came: the watermark plus the wall time since it last moved."""
    if state is None:
        return None
    return state.watermark + max(0.0, wall - state.wall)
