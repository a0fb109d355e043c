"""Detection end to end: the pipeline, the default rules, the samples, lateness, restarts and two instances."""

from __future__ import annotations

import random
import tomllib
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.app import compose
from shared.core.alert import Notification
from shared.core.clock import FixedClock
from shared.core.message import Message, Origin
from shared.core.timestamp import parse_time
from shared.detect.detector import PRUNE_EVERY, Detector
from shared.detect.rules import RulesFile, load_rules, parse_rules
from shared.detect.state import DetectionStore, MemoryDetectionStore
from shared.ingest.files import messages_from
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.ingest.replay import Replay
from shared.settings import ConfigurationError, load_settings
from shared.synth.records import BASE_TIME, body
from shared.synth.traffic import Traffic

ROOT = Path(__file__).resolve().parents[2]
SETTLE = 600.0


def pack(records: list[dict[str, Any]], size: int = 20) -> list[Message]:
    records = sorted(records, key=lambda r: r["properties"]["createdDateTime"])
    return [Message(body(records[i : i + size]), Origin(source=f"test:{i}")) for i in range(0, len(records), size)]


def run(detector: Detector, messages: Iterable[Message], batch: int = 10) -> list[dict[str, Any]]:
    pipeline = Pipeline(MemoryStore(), SETTLE, observers=[detector])
    replay = Replay(pipeline, batch_size=batch)
    return [line for o in replay.run(messages) for line in o.lines if line["type"] == "alert"]


def at(line: dict[str, Any]) -> float:
    value = parse_time(line["at"])
    assert value is not None
    return value


def detector(
    rules: RulesFile | None = None, store: DetectionStore | None = None, handed: list[Notification] | None = None
) -> Detector:
    """The default rules over a memory store; `handed` collects what is handed to delivery (the outbox's side)."""
    handoff = handed.extend if handed is not None else None
    return Detector(rules or load_rules(), store or MemoryDetectionStore(), ["teams", "pagerduty"], handoff=handoff)


# --- the samples, through replay ---

BURST_START = (BASE_TIME + timedelta(hours=2, minutes=40)).timestamp()


def about_teams(alert: dict[str, Any]) -> bool:
    """An alert of the Teams burst: Teams' own, or a platform's whose unbound sign-ins are mostly Teams'."""
    if "app" in alert["group"]:
        return alert["group"]["app"] == "Microsoft Teams"
    apps = alert["top"]["apps"]
    return apps[0][0] == "Microsoft Teams" and apps[0][1] * 2 > sum(count for _, count in apps)


def test_the_burst_sample_alerts_within_ten_minutes_and_only_for_teams() -> None:
    alerts = run(detector(), messages_from([str(ROOT / "samples" / "02-burst.jsonl")]))
    firing = [a for a in alerts if a["status"] == "firing"]
    assert firing
    assert min(at(a) for a in firing) - BURST_START < 600
    assert all(about_teams(a) for a in firing)
    assert {a["group"]["app"] for a in firing if "app" in a["group"]} == {"Microsoft Teams"}
    first = min(firing, key=at)
    assert first["codes"][0]["code"] == 1008
    assert "theft" not in first["summary"].lower()
    assert all(at(a) >= BURST_START for a in firing)


def test_the_rollout_sample_raises_nothing() -> None:
    assert run(detector(), messages_from([str(ROOT / "samples" / "01-rollout.jsonl")])) == []


def test_alert_lines_come_among_the_verdicts_in_event_time_order() -> None:
    pipeline = Pipeline(MemoryStore(), SETTLE, observers=[detector()])
    lines = [line for o in Replay(pipeline).run(messages_from([str(ROOT / "samples")])) for line in o.lines]
    kinds = [line["type"] for line in lines]
    assert "alert" in kinds and kinds.index("alert") > 0 and kinds[-1] == "verdict"
    alerts = [line for line in lines if line["type"] == "alert"]
    assert [at(a) for a in alerts] == sorted(at(a) for a in alerts)


# --- a long synthetic stream: hours of noise, then a burst ---


def noisy_hours(seed: int, hours: int, burst_at: int | None) -> list[dict[str, Any]]:
    traffic = Traffic(seed=seed, users=80, fillers=0)
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    for minute in range(hours * 60):
        start = BASE_TIME + timedelta(minutes=minute)
        for _ in range(rng.randint(3, 7)):  # ~5 sign-ins a minute, 12 % unbound, random codes and apps
            records += traffic.signin(start + timedelta(seconds=rng.randrange(60)))
        if minute % 6 == 0:  # the browser 1002 trickle
            records += traffic.signin(
                start, status="unbound", code=1002, app="Microsoft Teams", client_app="Browser", trust_type=""
            )
        if burst_at is not None and burst_at <= minute < burst_at + 15:
            # 20x Teams' usual unbound rate (5 x 12 % / 4 apps = 0.15 a minute): 3 a minute
            for _ in range(3):
                records += traffic.signin(
                    start + timedelta(seconds=rng.randrange(60)), app="Microsoft Teams", status="unbound", code=1008
                )
    return records


def test_an_endless_stream_keeps_its_window_buckets_bounded() -> None:
    """`replay -` on a live feed never has a batch without sign-ins, nor an end: old minutes must still go."""
    store = MemoryDetectionStore()
    rules = load_rules()
    pipeline = Pipeline(MemoryStore(), SETTLE, observers=[detector(rules, store)])
    for message in pack(noisy_hours(7, 8, None)):
        pipeline.ingest([message])  # no tick, no drain: every batch holds sign-ins
    keep = rules.span_seconds() + 2 * rules.defaults.allowed_lateness + 3600.0 + PRUNE_EVERY
    minutes = sorted(store._buckets)
    assert minutes and minutes[-1] - minutes[0] <= keep / 60


@pytest.mark.parametrize("seed", [3, 41])
def test_hours_of_noise_raise_nothing_and_a_burst_alerts_in_time(seed: int) -> None:
    burst_minute = 5 * 60 + 17
    alerts = run(detector(), pack(noisy_hours(seed, 6, burst_minute)))
    burst_start = (BASE_TIME + timedelta(minutes=burst_minute)).timestamp()
    early = [a for a in alerts if at(a) < burst_start]
    assert early == [], "noise raised an alert"
    firing = [a for a in alerts if a["status"] == "firing"]
    assert firing and min(at(a) for a in firing) - burst_start <= 600
    assert all(about_teams(a) for a in firing)


def test_the_same_stream_without_the_burst_is_quiet() -> None:
    assert run(detector(), pack(noisy_hours(8, 4, None))) == []


# --- lateness ---

LATE_RULES = parse_rules(
    {"defaults": {"allowed_lateness": "5m"}, "rules": [{"name": "t", "kind": "threshold", "threshold": 3}]}
)


def late_scenario(delay_minutes: int) -> tuple[Detector, list[dict[str, Any]]]:
    traffic = Traffic(seed=5, fillers=0)
    bound = [r for m in range(21) for r in traffic.signin(BASE_TIME + timedelta(minutes=m), status="bound")]
    late_at = BASE_TIME + timedelta(minutes=20 - delay_minutes)
    late = [r for _ in range(3) for r in traffic.signin(late_at, status="unbound", code=1008)]
    found = detector(LATE_RULES)
    pipeline = Pipeline(MemoryStore(), SETTLE, observers=[found])
    lines = []
    for batch in (pack(bound, size=500), pack(late, size=500)):
        lines += [line for line in pipeline.ingest(batch).lines if line["type"] == "alert"]
    return found, lines


def test_records_minutes_late_still_land_in_their_window() -> None:
    found, lines = late_scenario(delay_minutes=3)
    assert [line["status"] for line in lines] == ["firing"]
    assert found.late == 0


def test_records_later_than_the_allowed_lateness_are_not_counted() -> None:
    found, lines = late_scenario(delay_minutes=8)
    assert lines == []
    assert found.late >= 3


# --- restart, two instances, the timer ---


def burst_messages() -> list[Message]:
    return list(messages_from([str(ROOT / "samples" / "02-burst.jsonl")]))


def decisions(lines: Iterable[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(a["rule"], a["fingerprint"], a["status"], a["at"]) for a in lines]


def test_a_restart_in_the_middle_neither_loses_nor_repeats_an_alert() -> None:
    messages = burst_messages()
    split = 25  # mid-burst: some alerts fired before the restart, the rest after
    batches = _batches(messages[:split]) + _batches(messages[split:])  # the same batches with and without restart
    alone = Pipeline(MemoryStore(), SETTLE, observers=[detector()])
    reference = [line for b in batches for line in alone.ingest(b).lines] + alone.drain().lines
    whole = decisions(line for line in reference if line["type"] == "alert")
    state = MemoryDetectionStore()
    signins = MemoryStore()
    first = Pipeline(signins, SETTLE, observers=[detector(store=state)])
    lines = [line for m in _batches(messages[:split]) for line in first.ingest(m).lines]
    second = Pipeline(signins, SETTLE, observers=[detector(store=state)])  # a new process: nothing in memory
    lines += [line for m in _batches(messages[split:]) for line in second.ingest(m).lines]
    lines += second.drain().lines
    before = decisions(line for line in lines[: len(lines)] if line["type"] == "alert")
    assert before == whole
    assert len({(r, f, s, a) for r, f, s, a in before}) == len(before)


def _batches(messages: list[Message], size: int = 10) -> list[list[Message]]:
    return [messages[i : i + size] for i in range(0, len(messages), size)]


def test_two_instances_sharing_state_decide_each_alert_once() -> None:
    messages = burst_messages()
    whole = decisions(run(detector(), messages, batch=3))  # the same batches, one instance
    state = MemoryDetectionStore()
    signins = MemoryStore()
    pipelines = [Pipeline(signins, SETTLE, observers=[detector(store=state)]) for _ in range(2)]
    lines = []
    for index, batch in enumerate(_batches(messages, size=3)):
        lines += pipelines[index % 2].ingest(batch).lines
    lines += pipelines[0].drain().lines
    assert decisions(line for line in lines if line["type"] == "alert") == whole


def test_an_instance_with_stale_state_does_not_repeat_a_decision() -> None:
    state = MemoryDetectionStore()
    signins = MemoryStore()
    messages = burst_messages()
    a = detector(store=state)
    stale = state.load_states()
    b = detector(store=state)
    pipeline_a = Pipeline(signins, SETTLE, observers=[a])
    fired = [line for m in _batches(messages[:30]) for line in pipeline_a.ingest(m).lines if line["type"] == "alert"]
    assert fired
    b.store.load_states = lambda: stale  # type: ignore[method-assign]  # raced: loaded before a's writes
    replayed = Pipeline(signins, SETTLE, observers=[b])  # the same batches again (redelivery), on instance b
    again = [line for m in _batches(messages[:30]) for line in replayed.ingest(m).lines if line["type"] == "alert"]
    assert again == []  # every decision lost its conditional write to a's, so b emitted nothing


def until(messages: list[Message], end: float) -> list[Message]:
    """The messages before the first one holding a sign-in after `end` (event time)."""
    for index, message in enumerate(messages):
        times = [parse_time(r["properties"]["createdDateTime"]) or 0.0 for r in orjson.loads(message.body)["records"]]
        if max(times) > end:
            return messages[:index]
    return messages


def test_the_timer_resolves_alerts_whose_traffic_stopped() -> None:
    wall = FixedClock(BURST_START + 3600)
    notes: list[Notification] = []
    found = detector(handed=notes)
    pipeline = Pipeline(MemoryStore(), SETTLE, observers=[found], wall=wall)
    fired = []
    for batch in _batches(until(burst_messages(), BURST_START + 15 * 60)):  # the stream stops with the burst
        fired += [line for line in pipeline.ingest(batch).lines if line["type"] == "alert"]
    assert fired and not any(line["status"] == "resolved" for line in fired)
    ticked: list[dict[str, Any]] = []
    del notes[:]  # only what the timer hands over
    for _ in range(12):  # the timer, every 5 minutes of wall time, with no records
        wall.advance(300)
        outcome = pipeline.tick()
        ticked += [line for line in outcome.lines if line["type"] == "alert"]
    started = {line["fingerprint"] for line in fired + ticked if line["status"] == "firing"}
    resolved = {line["fingerprint"] for line in ticked if line["status"] == "resolved"}
    assert resolved == started  # the timer's minutes may still see the burst's end fire one; it resolves it too
    assert any(a.status == "resolved" for n in notes for a in n.alerts)


# --- notifications, silences, configuration ---


def test_one_incident_is_one_page_per_destination_headed_by_its_highest_severity() -> None:
    """The Teams burst hits report-only and enforced sign-ins on several platforms: several alerts, one incident.
    (Before incidents it opened four PagerDuty incidents and three Teams cards, one headed WARNING.)"""
    notes: list[Notification] = []
    found = detector(handed=notes)
    pipeline = Pipeline(MemoryStore(), SETTLE, observers=[found])
    lines = [line for batch in _batches(burst_messages()) for line in pipeline.ingest(batch).lines]
    lines += pipeline.drain().lines
    firing = [line for line in lines if line["type"] == "alert" and line["status"] == "firing"]
    assert len({line["fingerprint"] for line in firing}) > 2  # several rules and groups fired...
    assert len({line["incident"] for line in firing}) == 1  # ...as one incident
    assert sorted((n.receiver, n.reason) for n in notes) == [
        ("pagerduty", "opened"),
        ("pagerduty", "resolved"),
        ("teams", "opened"),
        ("teams", "resolved"),
    ]
    opened = {n.receiver: n for n in notes if n.reason == "opened"}
    assert opened["teams"].severity == "critical" and opened["teams"].alerts[0].severity == "critical"
    assert len(opened["teams"].alerts) > 1  # the warnings are in the same card
    assert {a.severity for a in opened["pagerduty"].alerts} == {"critical"}  # routes: pagerduty gets critical only
    assert len({n.incident for n in notes}) == 1


def test_silenced_alerts_are_decided_and_logged_but_not_notified() -> None:
    raw = {
        "rules": [r.model_dump() for r in load_rules().rules],
        "silences": [
            {
                "match": {"rule": [r.name for r in load_rules().rules]},
                "starts": datetime.fromtimestamp(BURST_START - 3600).astimezone(),
                "ends": datetime.fromtimestamp(BURST_START + 7200).astimezone(),
                "comment": "known Teams rollout",
            }
        ],
    }
    handed: list[Notification] = []
    found = detector(parse_rules(raw), handed=handed)
    pipeline = Pipeline(MemoryStore(), SETTLE, observers=[found])
    outcomes = [pipeline.ingest(batch) for batch in _batches(burst_messages())] + [pipeline.drain()]
    alerts = [line for o in outcomes for line in o.lines if line["type"] == "alert"]
    assert alerts and all(line["silenced"] for line in alerts)
    assert handed == []


def test_build_detector_reads_rules_file_setting(tmp_path: Path) -> None:
    file = tmp_path / "rules.toml"
    file.write_text('[[rules]]\nname = "only"\nkind = "threshold"\nthreshold = 2\n')
    settings = load_settings(RULES_FILE=str(file), ALERT_WEBHOOK_URL="https://hooks.example/x")
    built = compose.detector(settings, MemoryDetectionStore())
    assert [r.name for r in built.rules.rules] == ["only"]
    assert built.destinations == ["webhook"]
    shipped = compose.detector(load_settings(), MemoryDetectionStore())
    assert [r.name for r in shipped.rules.rules] == [r.name for r in load_rules().rules]


def test_a_bad_rules_file_stops_the_start_naming_file_rule_and_field(tmp_path: Path) -> None:
    file = tmp_path / "rules.toml"
    file.write_text('[[rules]]\nname = "burst"\nkind = "spike"\nbaseline = "1h"\nspike_height = "high"\n')
    with pytest.raises(ConfigurationError) as caught:
        compose.detector(load_settings(RULES_FILE=str(file)), MemoryDetectionStore())
    assert str(file) in str(caught.value) and "rule 'burst'" in str(caught.value)
    assert "spike_height" in str(caught.value)


def test_alerts_of_a_rule_the_rules_file_no_longer_has_resolve_and_their_incident_ends() -> None:
    """An upgrade or an edit renames a rule while its alert fires: the alert must not stay live forever."""
    store, handed = MemoryDetectionStore(), []
    messages = list(messages_from([str(ROOT / "samples" / "02-burst.jsonl")]))
    first = Detector(load_rules(), store, ["webhook"], handoff=handed.extend)
    pipeline = Pipeline(MemoryStore(), SETTLE, observers=[first])
    for message in messages[:30]:  # into the burst: alerts fire, the incident opens
        pipeline.ingest([message])
    firing = [s for s in store.load_states().alerts.values() if s.status == "firing"]
    assert firing and any(n.reason == "opened" for n in handed)
    text = (ROOT / "rules.toml").read_text(encoding="utf-8")
    renamed = parse_rules(tomllib.loads(text.replace('name = "unbound-users', 'name = "renamed-users')))
    pipeline.observers = [Detector(renamed, store, ["webhook"], handoff=handed.extend)]
    lines = pipeline.tick().lines
    assert {line["fingerprint"] for line in lines if line["status"] == "resolved"} >= {s.fingerprint for s in firing}
    assert not [s for s in store.load_states().alerts.values() if s.rule.startswith("unbound-users")]
