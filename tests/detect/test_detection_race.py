"""Two instances racing for the same alerts: the loser does not keep handing the same decisions to the outbox."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from shared.app import compose
from shared.core.alert import Notification
from shared.core.message import Message
from shared.detect.state import MemoryDetectionStore
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_a_lost_race_does_not_hand_over_the_same_decisions_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "https://hooks.example.invalid/x")
    settings = load_settings()
    shared_state = MemoryDetectionStore()
    handed: list[Notification] = []
    rival = compose.detector(settings, MemoryDetectionStore(), handed.extend)
    rival.store = shared_state
    pending: list = []

    def first_handoff(notifications: list[Notification]) -> None:
        handed.extend(notifications)
        for batch in pending:  # the rival takes the same decisions between our hand-over and our save
            rival.observe(batch)
        pending.clear()

    mine_handed: list[Notification] = []

    def first_handoff_recorded(notifications: list[Notification]) -> None:
        mine_handed.extend(notifications)
        first_handoff(notifications)

    mine = compose.detector(settings, MemoryDetectionStore(), first_handoff_recorded)
    mine.store = shared_state

    class Twin:
        """Feeds each batch to the rival too, right when `mine` hands over."""

        def observe(self, batch):
            pending.append(batch)
            return mine.observe(batch)

    pipeline = Pipeline(MemoryStore(), 600.0, observers=[Twin()])
    lines = [line for line in (ROOT / "samples" / "02-burst.jsonl").read_bytes().splitlines() if line.strip()]
    for start in range(0, len(lines), 4):
        pipeline.ingest([Message(line) for line in lines[start : start + 4]])
    assert handed
    ids_of_decision: dict[tuple[str, str, float], set[str]] = defaultdict(set)
    for notification in handed:
        for alert in notification.alerts:
            ids_of_decision[alert.fingerprint, alert.status, alert.at].add(notification.id)
    # The loser of a race goes on from the stored state: it never hands the same decision over twice.
    mine_decisions = [(a.fingerprint, a.status, a.at) for n in mine_handed for a in n.alerts]
    assert len(mine_decisions) == len(set(mine_decisions))
    # What remains: the two instances may group a decision differently, so it can reach the outbox twice
    # (receivers dedupe by fingerprint and status), never more.
    assert max(len(ids) for ids in ids_of_decision.values()) <= 2
