"""Notifications reach the outbox before the alert states say they were sent: a crash in between loses none."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.app import compose
from shared.core.alert import Notification
from shared.core.message import Message
from shared.detect.lifecycle import AlertState
from shared.detect.state import MemoryDetectionStore
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.ingest.replay import Replay
from shared.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


class Crash(Exception):
    pass


class CrashOnTake(MemoryDetectionStore):
    """Fails the write that records a flushed alert as handed over (its outbox queue emptied)."""

    def save_alert(self, state: AlertState) -> bool:
        if not state.outbox and self.armed:
            raise Crash
        return super().save_alert(state)

    armed = False


def test_a_crash_after_the_handoff_keeps_the_notification(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "https://hooks.example.invalid/x")
    outbox: list[Notification] = []
    detector = compose.detector(load_settings(), MemoryDetectionStore(), outbox.extend)
    store = CrashOnTake()
    detector.store = store
    replay = Replay(Pipeline(MemoryStore(), 600.0, observers=[detector]))
    lines = [line for line in (ROOT / "samples" / "02-burst.jsonl").read_bytes().splitlines() if line.strip()]
    store.armed = True
    with pytest.raises(Crash):
        for _ in replay.run(Message(line) for line in lines):
            pass
    assert outbox, "the notification must be in the outbox before the alert state is written"
    assert all(a.status == "firing" for n in outbox for a in n.alerts)
