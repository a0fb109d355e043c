"""Run-time silences, pure: what `--match` and `--for` accept, what a silence mutes, and how the shell reads them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.alert import Notification
from shared.detect.detector import Detector
from shared.detect.rules import LABELS, parse_rules
from shared.detect.silence import (
    RuntimeSilence,
    SilenceError,
    active,
    check_id,
    ended,
    new_silence,
    parse_matchers,
)
from shared.detect.state import MemoryDetectionStore
from shared.ingest.files import messages_from
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.ingest.replay import Replay

NOW = 1_800_000_000.0
ROOT = Path(__file__).resolve().parents[2]


def test_matchers_read_as_routes_match_and_repeat_a_label_for_alternatives() -> None:
    match = parse_matchers(['app="Microsoft Teams"', "enforcement=report_only", "app=Outlook"])
    assert match == {"app": ("Microsoft Teams", "Outlook"), "enforcement": ("report_only",)}
    silence = new_silence(match, NOW, "2h", "me", "why")
    assert silence.mutes({"app": "microsoft teams", "enforcement": "report_only", "rule": "r"})
    assert not silence.mutes({"app": "Microsoft Teams", "enforcement": "enforced"})
    assert not silence.mutes({"enforcement": "report_only"})  # a label it names must be there


@given(st.lists(st.text(max_size=60), max_size=5))
def test_any_matcher_text_is_read_or_refused_with_a_message(pairs: list[str]) -> None:
    try:
        match = parse_matchers(pairs)
    except SilenceError as error:
        assert str(error).startswith("--match")
        return
    assert match and set(match) <= LABELS and all(v and all(x.strip() for x in v) for v in match.values())


@pytest.mark.parametrize(("duration", "seconds"), [("30m", 1800.0), ("2h", 7200.0), ("1d", 86400.0)])
def test_a_silence_lasts_what_was_asked(duration: str, seconds: float) -> None:
    silence = new_silence({"app": ("x",)}, NOW, duration, "me", "why")
    assert silence.ends_at - silence.starts_at == seconds
    assert silence.is_active(NOW) and not silence.is_active(NOW + seconds)
    assert check_id(silence.id.upper()) == silence.id


@pytest.mark.parametrize(
    ("duration", "author", "reason", "says"),
    [("0m", "a", "r", "--for"), ("31d", "a", "r", "--for"), ("soon", "a", "r", "--for"), ("1h", " ", "r", "--author"),
     ("1h", "a", "", "--reason"), ("1h", "a", "x" * 501, "--reason")],
)  # fmt: skip
def test_a_bad_silence_is_refused_naming_the_argument(duration: str, author: str, reason: str, says: str) -> None:
    with pytest.raises(SilenceError, match=says):
        new_silence({"app": ("x",)}, NOW, duration, author, reason)


def test_no_matcher_no_silence() -> None:
    with pytest.raises(SilenceError, match="at least one"):
        parse_matchers([])


def test_expiring_ends_it_now_and_says_who() -> None:
    silence = new_silence({"app": ("x",)}, NOW, "2h", "me", "why")
    stopped = ended(silence, NOW + 60, "lead")
    assert stopped.ends_at == NOW + 60 and stopped.expired_by == "lead"
    assert active([silence, stopped], NOW + 61) == (silence,)
    assert ended(stopped, NOW + 600, "other") == stopped  # an ended one stays as it was


def test_an_incident_silenced_while_open_is_not_repeated_but_its_end_is_told() -> None:
    """On-call silences what already paged: no more repeats, and the incident still closes where it opened."""
    text = (ROOT / "rules.toml").read_text(encoding="utf-8").replace('repeat_interval = "4h"', 'repeat_interval = "3m"')
    rules = parse_rules(tomllib.loads(text))
    handed: list[Notification] = []
    live: list[RuntimeSilence] = []
    silence = new_silence({"severity": ("critical", "error", "warning", "info")}, NOW, "1d", "me", "known")

    def silences() -> list[RuntimeSilence]:
        if handed and not live:
            live.append(silence)  # added right after the first page
        return live

    detector = Detector(rules, MemoryDetectionStore(), ["webhook"], handoff=handed.extend, silences=silences)
    pipeline = Pipeline(MemoryStore(), 600.0, observers=[detector])
    list(Replay(pipeline, batch_size=1).run(messages_from([str(ROOT / "samples" / "02-burst.jsonl")])))
    reasons = [n.reason for n in handed]
    assert reasons[0] == "opened" and set(reasons[1:]) == {"resolved"}


def test_without_the_silence_the_same_incident_repeats() -> None:
    """The test above can fail: with nothing muted, a 3-minute repeat interval repeats during the burst."""
    text = (ROOT / "rules.toml").read_text(encoding="utf-8").replace('repeat_interval = "4h"', 'repeat_interval = "3m"')
    handed: list[Notification] = []
    detector = Detector(parse_rules(tomllib.loads(text)), MemoryDetectionStore(), ["webhook"], handoff=handed.extend)
    pipeline = Pipeline(MemoryStore(), 600.0, observers=[detector])
    list(Replay(pipeline, batch_size=1).run(messages_from([str(ROOT / "samples" / "02-burst.jsonl")])))
    assert "repeated" in [n.reason for n in handed]
