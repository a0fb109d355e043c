"""The shell's reading of run-time silences: at most every half minute, logged as they change, kept when the
store cannot be read."""

from __future__ import annotations

import logging

import pytest
from azure.core.exceptions import ServiceRequestError

from shared.app.silences import SilenceWatch
from shared.core.clock import FixedClock
from shared.detect.silence import MemorySilences, RuntimeSilence, new_silence

NOW = 1_800_000_000.0


def test_the_watch_reads_the_store_at_most_every_half_minute_and_logs_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, clock = MemorySilences(), FixedClock(NOW)
    watch = SilenceWatch(store, clock)
    assert watch() == ()
    silence = new_silence({"app": ("x",)}, NOW, "1h", "me", "why")
    store.add(silence)
    clock.advance(10)
    assert watch() == ()  # read 10 s ago: not yet
    clock.advance(25)
    with caplog.at_level(logging.INFO, logger="bindwatch"):
        assert watch() == (silence,)
        store.expire(silence.id, clock.now(), "lead")
        clock.advance(30)
        assert watch() == ()
    assert '"silence_active"' in caplog.text and '"silence_ended"' in caplog.text and '"lead"' in caplog.text


class Unreadable(MemorySilences):
    def silences(self) -> list[RuntimeSilence]:
        raise ServiceRequestError("down")


def test_an_unreadable_store_keeps_the_silences_last_read(caplog: pytest.LogCaptureFixture) -> None:
    clock = FixedClock(NOW)
    silence = new_silence({"app": ("x",)}, NOW, "1h", "me", "why")
    store = MemorySilences()
    store.add(silence)
    watch = SilenceWatch(store, clock)
    assert watch() == (silence,)
    watch.store = Unreadable()
    clock.advance(60)
    with caplog.at_level(logging.WARNING, logger="bindwatch"):
        assert watch() == (silence,)
        clock.advance(60)
        assert watch() == (silence,)
    assert caplog.text.count("silences_unreadable") == 1
