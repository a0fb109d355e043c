"""What evaluating a minute costs: it follows the groups that could fire and those that fire, not every group seen.

Counted, not timed: how many groups each kind judges per minute on a stream of thousands of quiet groups; and,
on random windows, that judging only those groups (with the window's counts moved forward minute by minute)
decides exactly what judging every group did.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from shared.core.message import Message, Origin
from shared.detect import detector as detector_module
from shared.detect.detector import Detector
from shared.detect.evaluation import Groups, MemoryView, evaluate, moment_for
from shared.detect.grouping import alert_dimensions, group_key
from shared.detect.kinds import KINDS, Finding
from shared.detect.memory import GroupMemory, RuleState, shard_of
from shared.detect.rules import parse_rules
from shared.detect.state import MemoryDetectionStore
from shared.detect.window import Tally, current_span, minute_of, total
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.synth.records import BASE_TIME, body
from shared.synth.traffic import Traffic

QUIET = 1500  # apps with a sign-in every 3 minutes, now and then unbound, never enough to fire
BURST = "Burst app"
MINUTES = 12


def stream() -> list[Message]:
    """Quiet apps in turn (each twice in any 5 minutes at most, a tenth of sign-ins unbound) and, from minute 8,
    one app with 4 people a minute unbound."""
    quiet, burst = Traffic(seed=1, users=5000, fillers=0), Traffic(seed=2, users=5000, fillers=0)
    rng = random.Random(3)
    records: list[dict[str, Any]] = []
    for minute in range(MINUTES):
        for index in range(minute % 3, QUIET, 3):
            at = BASE_TIME + timedelta(minutes=minute, seconds=rng.uniform(0, 59))
            status = "unbound" if rng.random() < 0.1 else "bound"
            records += quiet.signin(at, app=f"Quiet app {index:04d}", status=status)
        for person in range(4 if minute >= 8 else 0):
            at = BASE_TIME + timedelta(minutes=minute, seconds=10 + person)
            records += burst.signin(at, app=BURST, status="unbound", user=f"burst{minute}-{person}@contoso.com")
    records.sort(key=lambda r: r["properties"]["createdDateTime"])
    return [Message(body(records[i : i + 200]), Origin(source="cost")) for i in range(0, len(records), 200)]


RULES = parse_rules(
    {
        "rules": [
            {"name": "apps", "kind": "threshold", "threshold": 3, "group_by": ["app"], "window": "5m"},
            {
                "name": "apps-usual",
                "kind": "unusual",
                "group_by": ["app", "enforcement"],
                "combine": ["enforcement"],
                "count": "users",
                "min_current": 3,
                "window": "5m",
                "warmup": "1m",
            },
        ]
    }
)


def test_a_minute_judges_the_groups_that_could_fire_not_every_group_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    judged: Counter[str] = Counter()
    evaluations: Counter[str] = Counter()
    in_window: list[int] = []
    for name in ("threshold", "unusual"):
        kind = KINDS[name]
        original = kind.judge

        def counted(rule: Any, finding: Finding, moment: Any, original: Any = original) -> None:
            judged[rule.name] += 1
            original(rule, finding, moment)

        monkeypatch.setattr(kind, "judge", counted)
    real = detector_module.evaluate

    def evaluated(rule: Any, buckets: Any, moment: Any, *args: Any, **kwargs: Any) -> list[Finding]:
        findings = real(rule, buckets, moment, *args, **kwargs)
        evaluations[rule.name] += 1
        in_window.append(len(moment.current))
        return findings

    monkeypatch.setattr(detector_module, "evaluate", evaluated)
    detector = Detector(RULES, MemoryDetectionStore())
    pipeline = Pipeline(MemoryStore(), 600.0, observers=[detector])
    lines = [line for message in stream() for line in pipeline.ingest([message]).lines if line["type"] == "alert"]
    lines += pipeline.drain().lines
    fired = {(line["rule"], line["group"]["app"]) for line in lines if line.get("status") == "firing"}
    assert fired == {("apps", BURST), ("apps-usual", BURST)}
    assert max(in_window) >= QUIET * 0.9  # nearly every quiet app is in the window at every minute...
    for rule in ("apps", "apps-usual"):
        # ...and judged at none of them: only the burst app, once it has 3 unbound sign-ins (people) in 5 minutes
        assert 0 < judged[rule] <= evaluations[rule], (rule, judged[rule], evaluations[rule])


# --- judging only what could hold decides what judging every group did ---

KIND_RULES = [
    {"name": "t", "kind": "threshold", "threshold": 3, "group_by": ["app"], "window": "3m"},
    {"name": "tu", "kind": "threshold", "threshold": 2, "group_by": ["app"], "count": "users", "window": "2m"},
    {"name": "s", "kind": "spike", "group_by": ["app"], "window": "2m", "baseline": "10m", "spike_height": 2,
     "min_current": 2, "min_baseline": 1},
    {"name": "q", "kind": "ratio", "ratio": 0.3, "min_volume": 3, "min_current": 2, "group_by": ["app"],
     "window": "4m"},
    {"name": "n", "kind": "new", "lookback": "1h", "window": "5m", "group_by": ["app"], "min_current": 2,
     "warmup": "1m"},
    {"name": "u", "kind": "unusual", "group_by": ["app", "enforcement"], "combine": ["enforcement"],
     "count": "users", "min_current": 2, "window": "3m", "warmup": "1m", "probability": 0.5},
    {"name": "c", "kind": "unusual", "group_by": ["status_code", "enforcement"], "count": "users",
     "min_current": 2, "window": "2m", "warmup": "1m", "probability": 0.5, "min_height": 1.5},
]  # fmt: skip


def random_tally(rng: random.Random, rule: Any, start: int, minutes: int) -> Tally:
    """Sparse random traffic over many groups: most quiet, a few busy; every-code groups for code rules."""
    tally = Tally()
    for minute in range(start, start + minutes):
        for _ in range(rng.randrange(0, 30)):
            values = []
            for dimension in rule.group_by:
                if dimension == "status_code":
                    values.append(str(rng.choice([1002, 1003, 1008])))
                elif dimension == "enforcement":
                    values.append(rng.choice(["report_only", "enforced"]))
                else:
                    values.append(f"app{rng.randrange(40 if rng.random() < 0.8 else 3)}")
            counts = tally.counts(minute, rule.name, group_key(values))
            counts.judged += rng.randrange(0, 4)
            for _ in range(rng.choice([0, 0, 0, 1, 2, 5])):
                user = f"user{rng.randrange(8)}"
                counts.add_unbound({"user": [user], "app": [values[0]]}, f"c{rng.random()}")
            if "status_code" in rule.group_by:
                every = ["*" if d == "status_code" else v for d, v in zip(rule.group_by, values, strict=True)]
                tally.counts(minute, rule.name, group_key(every)).judged += rng.randrange(1, 5)
    return tally


def facts(f: Finding) -> tuple[Any, ...]:
    return (f.key, f.holds, f.current, f.expected, f.baseline, f.frozen, f.chance, f.severity, f.why, list(f.parts))


@pytest.mark.parametrize("entry", KIND_RULES, ids=lambda e: e["name"])
def test_judging_only_what_could_hold_decides_what_judging_every_group_did(entry: dict[str, Any]) -> None:
    rule = parse_rules({"rules": [entry]}).rules[0]
    absent = group_key(["nobody"] * len(alert_dimensions(rule)))  # an alert firing without traffic in the window
    held = 0
    for seed in range(12):
        rng = random.Random(seed)
        start = minute_of(BASE_TIME.timestamp())
        tally = random_tally(rng, rule, start, 40)
        state = RuleState(rule.name, started=start * 60.0)
        memory = GroupMemory(rule.name, 0)
        for minute in sorted(tally.buckets):
            for key, counts in tally.buckets[minute].get(rule.name, {}).items():
                if rule.kind == "new" and counts.unbound:
                    memory.see(key, minute * 60.0, 3600.0)
                elif rule.kind == "unusual" and minute < start + 5:  # a learnt rate for some groups
                    memory.apply(("learn", key, minute // 3, rng.uniform(0, 2), rng.uniform(2, 40), 100.0))
        groups = Groups(rule, tally.buckets)
        step = 5
        while step < 40:  # a minute at a time, or several (the window moves forward, or jumps)
            step += rng.choice([1, 1, 1, 2, 6])
            clock = (start + step) * 60.0 + 59.0
            everything = evaluate(rule, tally.buckets, moment_for(rule, clock, state, memory.entries))
            firing = [f.key for f in everything if f.holds][:2] + ([absent] if rng.random() < 0.3 else [])
            frozen = {key: 1.0 for key in firing} if KINDS[rule.kind].lookback(rule) else None
            full = evaluate(rule, tally.buckets, moment_for(rule, clock, state, memory.entries), firing, frozen)
            moment = moment_for(rule, clock, state, memory.entries)
            some = evaluate(rule, tally.buckets, moment, firing, frozen, groups=groups, every=False)
            by_key = {f.key: f for f in some}
            assert {f.key for f in some if f.holds} == {f.key for f in full if f.holds}
            held += sum(f.holds for f in full)
            for finding in full:
                if finding.holds or finding.key in firing:
                    assert facts(finding) == facts(by_key[finding.key]), (seed, step)
            assert moment.tested == max(1, len({f.key for f in everything}))
            fresh = total(tally.buckets, rule.name, current_span(clock, rule.window), detail=False)
            assert dict(moment.current) == fresh  # the moved window's counts, people included, are the sums'
    assert held, rule.name  # the check is not vacuous


def test_a_rules_memory_is_read_in_place() -> None:
    other = next(key for key in (f"b{i}" for i in range(100)) if shard_of(key) != shard_of("a"))
    shards = {("r", shard_of("a")): GroupMemory("r", shard_of("a"), {"a": [1.0, 2.0]})}
    view = MemoryView(shards, "r")
    assert view.get("a") == [1.0, 2.0] and view.get(other) is None and dict(view) == {"a": [1.0, 2.0]}
    shards[("r", shard_of(other))] = GroupMemory("r", shard_of(other), {other: [3.0, 4.0]})
    shards[("x", shard_of("c"))] = GroupMemory("x", shard_of("c"), {"c": [5.0, 6.0]})
    assert view.get(other) == [3.0, 4.0] and len(view) == 2 and "c" not in view  # what changes is seen at once
