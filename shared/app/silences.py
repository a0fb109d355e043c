"""The run-time silences detection honours: read from their store at most every half minute, logged as they change.

Every instance reads the store on its own, so a silence added from the command line is honoured everywhere within
`REFRESH_SECONDS` plus the next batch or timer tick (the settle timer ticks each minute). A store that cannot be
read keeps the silences last read (ingestion never stops for a silence), and says so once per failure streak.
"""

from __future__ import annotations

import logging

from azure.core.exceptions import AzureError

from shared.core.clock import Clock, SystemClock
from shared.detect.silence import RuntimeSilence, SilenceStore, active
from shared.telemetry import log_event

REFRESH_SECONDS = 30.0


class SilenceWatch:
    """Callable for `Detector(silences=...)`: the silences active at the wall clock now."""

    def __init__(self, store: SilenceStore, clock: Clock | None = None, refresh: float | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.refresh = REFRESH_SECONDS if refresh is None else refresh
        self._kept: list[RuntimeSilence] = []
        self._read_at: float | None = None
        self._active: dict[str, RuntimeSilence] = {}
        self._failing = False

    def __call__(self) -> tuple[RuntimeSilence, ...]:
        now = self.clock.now()
        if self._read_at is None or now - self._read_at >= self.refresh:
            self._read(now)
        current = active(self._kept, now)
        self._log_changes({s.id: s for s in current})
        return current

    def _read(self, now: float) -> None:
        try:
            self._kept = self.store.silences()
        except AzureError as error:
            if not self._failing:
                log_event("silences_unreadable", logging.WARNING, error=type(error).__name__, kept=len(self._kept))
            self._failing = True
            return
        self._failing = False
        self._read_at = now

    def _log_changes(self, current: dict[str, RuntimeSilence]) -> None:
        for silence in current.values():
            if silence.id not in self._active:
                log_event(
                    "silence_active",
                    logging.INFO,
                    id=silence.id,
                    match=silence.describe(),
                    ends_at=silence.ends_at,
                    author=silence.author,
                    reason=silence.reason,
                )
        latest = {s.id: s for s in self._kept}
        for gone in sorted(self._active.keys() - current.keys()):
            expired_by = latest.get(gone, self._active[gone]).expired_by
            log_event("silence_ended", logging.INFO, id=gone, expired_by=expired_by)
        self._active = current
