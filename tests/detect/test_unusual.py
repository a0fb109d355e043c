"""The `unusual` rule kind, pure: expectations that follow the day, borrowed strength, people not retries,
the correction for many groups, enforcement modes judged together, and what it learns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.detect.evaluation import evaluate, moment_for
from shared.detect.grouping import group_key
from shared.detect.kinds import KINDS, Moment
from shared.detect.kinds.unusual import half_life_windows, window_minutes
from shared.detect.memory import GroupMemory, RuleState
from shared.detect.rules import Rule, parse_rules
from shared.detect.window import Buckets, Span, Tally, total

T = 1_773_360_000.0  # 2026-03-13 00:00 UTC, a multiple of five minutes
WINDOW = 300.0


def rule(**fields: Any) -> Rule:
    base = {
        "name": "u",
        "kind": "unusual",
        "group_by": ["app"],
        "count": "users",
        "window": "5m",
        "min_current": 5,
        "warmup": "1m",
    }
    return parse_rules({"rules": [{**base, **fields}]}).rules[0]


APP = rule()
MODES = rule(
    group_by=["app", "enforcement"],
    combine=["enforcement"],
    severity_by_enforcement={"enforced": "critical", "report_only": "warning"},
)


def key(*values: str) -> str:
    return group_key(values)


@dataclass
class Tenant:
    """One rule's buckets and memory, learning window by window as the detector does."""

    rule: Rule
    buckets: Buckets = field(default_factory=dict)
    state: RuleState = field(default_factory=lambda: RuleState("u", started=T - 86400))
    memory: GroupMemory = field(default_factory=lambda: GroupMemory("u", 0))
    people: int = 0

    def window(self, start: float, traffic: dict[str, tuple[int, int, int]]) -> None:
        """One five-minute window: per group (healthy sign-ins, people with unbound sign-ins, their sign-ins)."""
        tally = Tally()
        minute = int(start // 60)
        for group, (healthy, people, signins) in traffic.items():
            counts = tally.counts(minute, self.rule.name, group)
            counts.judged += healthy + signins
            for index in range(signins):
                counts.add_unbound({"user": [f"p{self.people + index % max(1, people)}"]}, f"c{minute}-{index}")
            self.people += people
        for minute_, bucket in tally.buckets.items():
            self.buckets.setdefault(minute_, {}).setdefault(self.rule.name, {}).update(bucket[self.rule.name])

    def learn(self, start: float) -> None:
        """Learn the window that starts at `start` (the detector does this once it is final)."""
        size = window_minutes(self.rule)
        window = int(start // 60) // size
        span = Span(window * size, window * size + size - 1)
        moment = Moment(start + WINDOW - 1, span, self.state, memory=self.memory.entries)
        kind = KINDS["unusual"]
        moment.before = total(self.buckets, self.rule.name, Span(span.first - 25, span.first - 1), detail=False)
        groups, own = kind.lessons(self.rule, window, total(self.buckets, self.rule.name, span), moment)
        for operation in groups:
            self.memory.apply(operation)
        for operation in own:
            self.state.apply(operation)

    def day(self, start: float, traffic: dict[str, tuple[int, int, int]], hours: int = 24) -> None:
        """Ordinary days: the same rate all day, volume following office hours (8x between night and day)."""
        for index in range(hours * 12):
            at = start + index * WINDOW
            hour = (at % 86400) / 3600
            level = 8 if 9 <= hour < 17 else 4 if 7 <= hour < 9 or 17 <= hour < 19 else 1
            scaled = {g: (h * level, p * level, s * level) for g, (h, p, s) in traffic.items()}
            self.window(at, scaled)
            self.learn(at)

    def judge(self, at: float, frozen: dict[str, float] | None = None) -> dict[str, Any]:
        moment = moment_for(self.rule, at, self.state, self.memory.entries)
        return {f.key: f for f in evaluate(self.rule, self.buckets, moment, [], frozen)}


def test_office_hours_raise_the_expectation_with_the_traffic() -> None:
    tenant = Tenant(rule(min_current=1))  # judged however few (the floor otherwise skips small counts)
    tenant.day(T - 86400, {key("Outlook"): (40, 1, 1)})  # one person in 40 healthy sign-ins, day and night
    night, day = T + 3 * 3600, T + 11 * 3600
    tenant.window(night, {key("Outlook"): (40, 1, 1)})
    tenant.window(day, {key("Outlook"): (320, 8, 8)})  # the day's 8x: expected, not a spike
    quiet = tenant.judge(night + WINDOW - 1)[key("Outlook")]
    busy = tenant.judge(day + WINDOW - 1)[key("Outlook")]
    assert quiet.expected is not None and busy.expected is not None
    assert quiet.expected < 2 and busy.expected > 6
    assert not busy.holds
    assert busy.expected / quiet.expected == pytest.approx((320 + 1) / (40 + 1), rel=0.01)  # as healthy sign-ins


def test_a_burst_of_people_fires_at_once_and_a_handful_against_a_tiny_rate_does_not() -> None:
    tenant = Tenant(APP)
    tenant.day(T - 86400, {key("Outlook"): (100, 1, 1), key("Teams"): (100, 1, 1)})
    at = T + 11 * 3600
    tenant.window(at, {key("Outlook"): (800, 10 * 5, 10 * 5), key("Teams"): (800, 12, 12)})
    found = tenant.judge(at + WINDOW - 1)
    assert found[key("Outlook")].holds  # 50 against 8 expected
    assert not found[key("Teams")].holds  # 12 against 8: not an incident
    assert found[key("Outlook")].chance < 1e-4


def test_a_single_person_retrying_is_one_person() -> None:
    tenant = Tenant(APP)
    tenant.day(T - 86400, {key("Outlook"): (100, 0, 0)})
    at = T + 11 * 3600
    tenant.window(at, {key("Outlook"): (800, 1, 40)})  # one broken device, forty tries
    finding = tenant.judge(at + WINDOW - 1)[key("Outlook")]
    assert finding.current == 1 and not finding.holds
    counted_in_signins = Tenant(rule(count="signins"))
    counted_in_signins.day(T - 86400, {key("Outlook"): (100, 0, 0)})
    counted_in_signins.window(at, {key("Outlook"): (800, 1, 40)})
    assert counted_in_signins.judge(at + WINDOW - 1)[key("Outlook")].holds  # what counting sign-ins did


def test_a_new_app_borrows_from_the_population_and_its_prior_is_wide() -> None:
    """A group with no history expects the population's rate, with a prior as wide as apps differ: 5 people
    against 1.5 expected is nothing; 60 against 1.5 pages at once."""
    tenant = Tenant(APP)
    tenant.day(T - 86400, {key(f"App {i}"): (150, 1, 1) for i in range(20)})
    at = T + 11 * 3600
    tenant.window(at, {key("New"): (100, 5, 5), key("Newer"): (100, 60, 60)})
    found = tenant.judge(at + WINDOW - 1)
    assert 0.5 < found[key("New")].expected < 3
    assert not found[key("New")].holds and found[key("Newer")].holds


def test_the_correction_for_many_groups_tested() -> None:
    """The same count is improbable enough among a few apps and not among hundreds (Bonferroni)."""

    def fires(apps: int) -> bool:
        tenant = Tenant(APP)
        traffic = {key(f"App {i}"): (200, 2, 2) for i in range(apps)}
        tenant.day(T - 6 * 3600, traffic, hours=6)
        at = T + 2 * 3600
        tenant.window(at, {**traffic, key("App 0"): (200, 11, 11)})
        return tenant.judge(at + WINDOW - 1)[key("App 0")].holds

    assert fires(3) and not fires(300)


def test_modes_judged_together_learn_apart_so_a_switch_to_enforced_changes_nothing() -> None:
    tenant = Tenant(MODES)
    report, enforced = key("Outlook", "report_only"), key("Outlook", "enforced")
    tenant.day(T - 86400, {report: (300, 3, 3), enforced: (100, 1, 1)})
    at = T + 11 * 3600
    tenant.window(at, {report: (1600, 16, 16), enforced: (1600, 16, 16)})  # half the users moved to enforced
    after_switch = tenant.judge(at + WINDOW - 1)[key("Outlook")]
    assert not after_switch.holds and after_switch.group == {"app": "Outlook"}
    burst = at + WINDOW
    tenant.window(burst, {report: (2400, 24 + 60, 24 + 60), enforced: (800, 8 + 40, 8 + 40)})
    found = tenant.judge(burst + WINDOW - 1)[key("Outlook")]
    assert found.holds and found.severity == "critical"  # the blocked part is itself far above usual
    assert "enforced" in found.why and "report_only" in found.why


def test_a_combined_alert_is_a_warning_while_only_would_be_blocks_are_unusual() -> None:
    tenant = Tenant(MODES)
    report, enforced = key("Outlook", "report_only"), key("Outlook", "enforced")
    tenant.day(T - 86400, {report: (300, 3, 3), enforced: (300, 3, 3)})
    at = T + 11 * 3600
    tenant.window(at, {report: (2400, 24 + 150, 24 + 150), enforced: (2400, 24, 24)})
    found = tenant.judge(at + WINDOW - 1)[key("Outlook")]
    assert found.holds and found.severity == "warning"


def test_an_incident_is_learnt_only_up_to_the_firing_floor() -> None:
    tenant = Tenant(APP)
    tenant.day(T - 86400, {key("Outlook"): (100, 1, 1)})
    before = tenant.memory.entries[key("Outlook")]
    at = T + 3 * 3600
    tenant.window(at, {key("Outlook"): (100, 500, 500)})
    tenant.learn(at)
    after = tenant.memory.entries[key("Outlook")]
    decay = 0.5 ** ((after[2] - before[2]) / half_life_windows(APP))
    learnt = after[0] - before[0] * decay
    assert learnt == pytest.approx(4, abs=0.01)  # min_current - 1: five hundred people were not learnt as usual
    assert after[1] > before[1] * decay


def test_a_firing_alert_holds_against_the_rate_it_started_with() -> None:
    tenant = Tenant(APP)
    tenant.day(T - 86400, {key("Outlook"): (100, 1, 1)})
    at = T + 11 * 3600
    tenant.window(at, {key("Outlook"): (800, 40, 40)})
    first = tenant.judge(at + WINDOW - 1)[key("Outlook")]
    assert first.holds and first.frozen is not None
    later = at + WINDOW
    tenant.window(later, {key("Outlook"): (800, 20, 20)})  # half the burst: no longer 3x above a learnt 8x rate?
    held = tenant.judge(later + WINDOW - 1, frozen={key("Outlook"): first.frozen})[key("Outlook")]
    assert held.holds
    quiet = later + WINDOW
    tenant.window(quiet, {key("Outlook"): (800, 8, 8)})
    assert not tenant.judge(quiet + WINDOW - 1, frozen={key("Outlook"): first.frozen})[key("Outlook")].holds
