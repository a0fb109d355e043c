"""Notifications reach the outbox before the incident says they were told: a crash in between loses none."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.app import compose
from shared.core.alert import Notification
from shared.core.message import Message
from shared.detect.incident import IncidentState
from shared.detect.state import MemoryDetectionStore
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.ingest.replay import Replay
from shared.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


class Crash(Exception):
    pass


class CrashOnTake(MemoryDetectionStore):
    """Fails the write that records an incident's notification as handed over (a destination told)."""

    def save_incident(self, state: IncidentState) -> bool:
        if state.told and self.armed:
            raise Crash
        return super().save_incident(state)

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
    assert outbox, "the notification must be in the outbox before the incident records it"
    assert all(n.reason == "opened" for n in outbox)
