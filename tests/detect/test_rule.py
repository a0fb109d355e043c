"""Rules: the rules file model and its errors, how sign-ins map to groups, and each rule kind's evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.core.message import Message, Origin
from shared.core.record import Reading, read_message
from shared.core.request import judge
from shared.core.signin import SignIn
from shared.detect.evaluation import evaluate, moment_for
from shared.detect.grouping import group_key, group_keys
from shared.detect.kinds import KINDS
from shared.detect.memory import GroupMemory, RuleState, shard_of
from shared.detect.routing import labels, receivers, silenced
from shared.detect.rules import DEFAULT_RULES_FILE, RulesFile, load_rules, parse_duration, parse_rules
from shared.detect.window import Tally, minute_of
from shared.settings import ConfigurationError
from shared.synth.records import body, policy, record

T = 1_773_129_600.0  # 2026-03-10T08:00:00Z


def signin_of(*records: dict[str, Any]) -> SignIn:
    reading = Reading()
    read_message(Message(body(list(records)), Origin(source="test")), reading)
    signin = SignIn(records[0]["correlationId"])
    for accepted in reading.accepted:
        signin.absorb(judge(accepted, 0.0), 0.0)
    return signin


def unbound_record(**overrides: Any) -> dict[str, Any]:
    result = "failure" if overrides.pop("enforced", False) else "reportOnlyFailure"
    tp = policy(result=result, not_satisfied=["SignInTokenProtection"])
    return record(status="unbound", policies=[tp], **{"code": 1008, **overrides})


def rules(*entries: dict[str, Any], **extra: Any) -> RulesFile:
    return parse_rules({"rules": list(entries), **extra})


# --- the file ---


def test_the_shipped_rules_file_loads_and_keeps_report_only_and_enforced_apart() -> None:
    """The defaults count people against learnt rates (issue 12: the old spike, volume, ratio and new defaults
    paged ten times on two ordinary days); enforced blocks are critical, would-be blocks warnings."""
    shipped = load_rules()
    assert len(shipped.active_rules) >= 2
    assert {r.kind for r in shipped.rules} == {"unusual"}
    for rule in shipped.rules:
        assert "enforcement" in rule.group_by or rule.enforcement() in ("report_only", "enforced"), rule.name
        assert rule.count == "users", rule.name
        assert rule.min_current >= 2, rule.name  # a single user never pages
        assert rule.severity_of({"enforcement": "enforced"}) == "critical"
        assert rule.severity_of({"enforcement": "report_only"}) == "warning"


def test_every_rule_field_is_documented() -> None:
    from shared.detect.rules import Defaults, Incidents, InhibitRule, Route, Rule, Silence

    doc = (DEFAULT_RULES_FILE.parent / "docs" / "rules.md").read_text(encoding="utf-8")
    for model in (Rule, Defaults, Route, Silence, Incidents, InhibitRule):
        for name in model.model_fields:
            assert f"`{name}`" in doc, f"{model.__name__}.{name} is not in docs/rules.md"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("7d", 604800), (45, 45), ("2.5m", 150)]
)
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "-5m", "0", "5 weeks", True, None, [1]])
def test_bad_durations(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"name": "a", "kind": "threshold"}, "threshold"),
        ({"name": "a", "kind": "spike", "spike_height": 3}, "baseline"),
        ({"name": "a", "kind": "spike", "baseline": "1h", "spike_height": 1}, "spike_height"),
        ({"name": "a", "kind": "ratio"}, "ratio"),
        ({"name": "a", "kind": "ratio", "ratio": 0.5, "group_by": ["status_code"]}, "group_by"),
        ({"name": "a", "kind": "new"}, "lookback"),
        ({"name": "a", "kind": "threshold", "threshold": 3, "window": "soon"}, "window"),
        ({"name": "a", "kind": "threshold", "threshold": 3, "group_by": ["department"]}, "group_by"),
        ({"name": "a", "kind": "threshold", "threshold": 3, "match": {"enforcement": "blocked"}}, "match.enforcement"),
        ({"name": "a", "kind": "threshold", "threshold": 3, "match": {"status_code": "x"}}, "match.status_code"),
        ({"name": "a", "kind": "threshold", "threshold": 3, "colour": "red"}, "colour"),
        ({"name": "a", "kind": "sometimes"}, "kind"),
    ],
)
def test_a_bad_rule_is_named_with_its_field(entry: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_rules({"rules": [entry]}, "my-rules.toml")
    message = str(caught.value)
    assert message.startswith("rules file my-rules.toml: rule 'a'")
    assert field in message


def test_duplicate_names_and_bad_sections_are_reported(tmp_path: Path) -> None:
    entry = {"name": "a", "kind": "threshold", "threshold": 3}
    with pytest.raises(ConfigurationError, match="'a' is defined twice"):
        parse_rules({"rules": [entry, entry]})
    with pytest.raises(ConfigurationError, match=r"routes\[0\] field receivers"):
        parse_rules({"routes": [{"receivers": ["email"]}]})
    with pytest.raises(ConfigurationError, match=r"silences\[0\].*ends: must be after starts"):
        parse_rules({"silences": [{"match": {"rule": "a"}, "starts": T, "ends": T, "comment": "x"}]})
    with pytest.raises(ConfigurationError, match=r"field defaults.group_wait"):
        parse_rules({"defaults": {"group_wait": "-1s"}})


def test_file_problems_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigurationError, match=f"rules file {missing}: cannot read"):
        load_rules(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("[[rules]\nname = 'x'\n")
    with pytest.raises(ConfigurationError, match=f"rules file {broken}: not valid TOML"):
        load_rules(broken)


# --- sign-ins to groups ---


def test_a_signin_with_two_apps_counts_in_each_app_group() -> None:
    correlation = "c-1"
    signin = signin_of(
        unbound_record(correlation_id=correlation, app="Microsoft Teams"),
        unbound_record(correlation_id=correlation, app="Microsoft Outlook", code=1002),
    )
    rule = rules({"name": "r", "kind": "threshold", "threshold": 1, "group_by": ["app", "status_code"]}).rules[0]
    keys = group_keys(rule, signin, unbound=True)
    assert len(keys) == 4  # 2 apps x 2 codes
    assert group_key(["Microsoft Teams", "1008"]) in keys


def test_filters_and_excludes_narrow_the_groups() -> None:
    signin = signin_of(unbound_record(client_app="Browser"))
    rule = rules(
        {"name": "r", "kind": "threshold", "threshold": 1, "group_by": ["app"], "exclude": {"client_app": "browser"}}
    ).rules[0]
    assert group_keys(rule, signin, unbound=True) == []
    enforced_only = rules({"name": "r", "kind": "threshold", "threshold": 1, "match": {"enforcement": "enforced"}})
    assert group_keys(enforced_only.rules[0], signin_of(unbound_record()), unbound=True) == []
    assert group_keys(enforced_only.rules[0], signin_of(unbound_record(enforced=True)), unbound=True) == ["[]"]


def test_judged_signins_have_no_code_to_group_by() -> None:
    rule = rules({"name": "r", "kind": "threshold", "threshold": 1, "group_by": ["status_code"]}).rules[0]
    assert group_keys(rule, signin_of(unbound_record()), unbound=False) == []


def test_missing_values_group_as_none() -> None:
    rule = rules({"name": "r", "kind": "threshold", "threshold": 1, "group_by": ["os"]}).rules[0]
    assert group_keys(rule, signin_of(unbound_record(os="")), unbound=True) == [group_key(["(none)"])]


# --- evaluation per kind ---


def fill(tally: Tally, rule: str, key: str, at: float, *, unbound: int = 0, judged: int = 0) -> None:
    counts = tally.counts(minute_of(at), rule, key)
    counts.judged += judged
    for index in range(unbound):
        counts.add_unbound({"status_code": ["1008"]}, f"{at}-{index}")


def test_threshold_fires_at_n_in_the_window_and_not_outside_it() -> None:
    rule = rules({"name": "t", "kind": "threshold", "threshold": 5, "window": "10m"}).rules[0]
    tally = Tally()
    fill(tally, "t", "[]", T, unbound=3)
    fill(tally, "t", "[]", T + 300, unbound=2)
    state = RuleState("t", started=T)
    assert evaluate(rule, tally.buckets, moment_for(rule, T + 400, state))[0].holds
    later = evaluate(rule, tally.buckets, moment_for(rule, T + 660, state))[0]
    assert not later.holds and later.counts.unbound == 2


def spike_rule(**overrides: Any) -> Any:
    entry = {
        "name": "s",
        "kind": "spike",
        "window": "10m",
        "baseline": "1h",
        "spike_height": 5,
        "min_current": 8,
        "min_baseline": 6,
        "warmup": "30m",
        **overrides,
    }
    return rules(entry).rules[0]


def test_spike_compares_the_window_with_the_baseline_rate() -> None:
    rule = spike_rule()
    tally = Tally()
    for minute in range(60):  # 2 per minute for an hour: 20 expected per 10 minutes
        fill(tally, "s", "[]", T + minute * 60, unbound=2)
    clock = T + 70 * 60 - 1
    for minute in range(60, 70):
        fill(tally, "s", "[]", T + minute * 60, unbound=9)
    state = RuleState("s", started=T)
    finding = evaluate(rule, tally.buckets, moment_for(rule, clock, state))[0]
    assert finding.expected == pytest.approx(20)
    assert finding.current == 90
    assert not finding.holds  # 90 < 5 x 20
    fill(tally, "s", "[]", clock, unbound=20)
    assert evaluate(rule, tally.buckets, moment_for(rule, clock, state))[0].holds


def test_spike_floors_guard_small_counts_and_a_zero_baseline() -> None:
    rule = spike_rule()
    tally = Tally()
    clock = T + 3 * 3600
    fill(tally, "s", "[]", clock, unbound=7)
    state = RuleState("s", started=T)
    finding = evaluate(rule, tally.buckets, moment_for(rule, clock, state))[0]
    assert finding.expected == pytest.approx(1.0)  # the floor: 6 an hour
    assert not finding.holds  # below min_current
    fill(tally, "s", "[]", clock, unbound=1)
    assert evaluate(rule, tally.buckets, moment_for(rule, clock, state))[0].holds


def test_spike_waits_for_its_warmup() -> None:
    rule = spike_rule()
    tally = Tally()
    fill(tally, "s", "[]", T + 600, unbound=50)
    young = RuleState("s", started=T)
    assert not evaluate(rule, tally.buckets, moment_for(rule, T + 600, young))[0].holds
    assert "warming up" in evaluate(rule, tally.buckets, moment_for(rule, T + 600, young))[0].why
    warm = Tally()
    fill(warm, "s", "[]", T + 1900, unbound=50)
    assert evaluate(rule, warm.buckets, moment_for(rule, T + 1900, young))[0].holds


def test_a_lasting_spike_keeps_firing_against_the_baseline_it_started_with() -> None:
    rule = spike_rule()
    tally = Tally()
    for minute in range(180):  # quiet hour, then 2 hours at 10 a minute
        fill(tally, "s", "[]", T + minute * 60, unbound=0 if minute < 60 else 10)
    state = RuleState("s", started=T)
    clock = T + 180 * 60 - 1
    caught_up = evaluate(rule, tally.buckets, moment_for(rule, clock, state))[0]
    assert not caught_up.holds  # the baseline has caught up: a plain spike rule would go quiet
    frozen = evaluate(rule, tally.buckets, moment_for(rule, clock, state), ["[]"], {"[]": 1.0})[0]
    assert frozen.holds


def test_ratio_needs_volume_and_share() -> None:
    rule = rules({"name": "q", "kind": "ratio", "ratio": 0.5, "min_volume": 20, "window": "30m"}).rules[0]
    tally = Tally()
    fill(tally, "q", "[]", T, unbound=9, judged=10)
    state = RuleState("q", started=T)
    assert not evaluate(rule, tally.buckets, moment_for(rule, T, state))[0].holds  # volume 10 < 20
    fill(tally, "q", "[]", T + 60, unbound=2, judged=10)
    finding = evaluate(rule, tally.buckets, moment_for(rule, T + 60, state))[0]
    assert finding.holds and finding.current == pytest.approx(11 / 20)
    fill(tally, "q", "[]", T + 120, judged=10)
    assert not evaluate(rule, tally.buckets, moment_for(rule, T + 120, state))[0].holds  # 11/30


def test_new_fires_for_a_group_not_seen_unbound_during_the_lookback() -> None:
    rule = rules(
        {"name": "n", "kind": "new", "lookback": "7d", "warmup": "1d", "window": "1h", "group_by": ["app"]}
    ).rules[0]
    key = group_key(["Teams"])
    state = RuleState("n", started=T)
    memory = GroupMemory("n", shard_of(key))
    tally = Tally()
    early = T + 3600
    memory.see(key, early, rule.lookback)
    fill(tally, "n", key, early, unbound=1)
    assert not evaluate(rule, tally.buckets, moment_for(rule, early, state, memory.entries))[0].holds  # warm-up
    again = T + 2 * 86400
    memory.see(key, again, rule.lookback)  # seen a day ago: not new
    fill(tally, "n", key, again, unbound=1)
    assert not evaluate(rule, tally.buckets, moment_for(rule, again, state, memory.entries))[0].holds
    much_later = again + 8 * 86400
    assert memory.see(key, much_later, rule.lookback)
    fill(tally, "n", key, much_later, unbound=1)
    assert evaluate(rule, tally.buckets, moment_for(rule, much_later, state, memory.entries))[0].holds
    later = moment_for(rule, much_later + 3601, state, memory.entries)
    assert not evaluate(rule, tally.buckets, later, [key])[0].holds


def test_rule_memory_writes_are_coarse() -> None:
    state = RuleState("n")
    assert state.start(T) and not state.start(T + 5) and state.start(T - 5)
    memory = GroupMemory("n", 0)
    assert memory.see("k", T, 86400)
    assert not memory.see("k", T + 60, 86400)  # the same episode, within the hour: no write needed
    assert memory.see("k", T + 7200, 86400)


def test_a_new_rule_forgets_groups_after_its_lookback_which_changes_no_decision() -> None:
    """Issue 13: the memory of a `new` rule grew with every group ever seen. A group unseen for the lookback is
    new again either way, so forgetting it is exact, and bounds the memory by the groups of one lookback."""
    rule = rules({"name": "n", "kind": "new", "lookback": "1d", "window": "1h", "group_by": ["user"]}).rules[0]
    forget = KINDS["new"].forget(rule, T + 3 * 86400)
    memory = GroupMemory("n", 0)
    for index in range(100):
        memory.see(f"u{index}", T + index * 3600, rule.lookback)  # one user an hour for 100 hours
    remembered = dict(memory.entries)
    assert forget is not None and memory.apply(forget)
    assert 0 < len(memory.entries) < len(remembered)
    for key, (_, last) in remembered.items():
        if key not in memory.entries:  # forgotten: a sighting now would start a new episode anyway
            assert last + rule.lookback < T + 3 * 86400


# --- routes and silences ---


def test_routes_pick_receivers_and_fall_back_to_every_destination() -> None:
    file = rules(
        {"name": "a", "kind": "threshold", "threshold": 1, "severity": "critical", "group_by": ["app"]},
        routes=[{"match": {"severity": "critical"}, "receivers": ["pagerduty", "teams"]}],
    )
    rule = file.rules[0]
    assert receivers(file, rule, {"app": "Teams"}, ["teams", "webhook", "pagerduty"]) == ["pagerduty", "teams"]
    # None of the routed receivers is configured: the alert goes where it can rather than nowhere.
    assert receivers(file, rule, {"app": "Teams"}, ["webhook"]) == ["webhook"]
    plain = rules({"name": "b", "kind": "threshold", "threshold": 1})
    assert receivers(plain, plain.rules[0], {}, ["teams", "webhook"]) == ["teams", "webhook"]


def test_silences_are_time_boxed_and_match_labels() -> None:
    file = rules(
        {"name": "a", "kind": "threshold", "threshold": 1, "group_by": ["app"], "match": {"enforcement": "enforced"}},
        silences=[
            {"match": {"app": "microsoft teams"}, "starts": "2026-03-10T08:00:00Z", "ends": "2026-03-10T09:00:00Z"}
            | {"comment": "known rollout"}
        ],
    )
    rule = file.rules[0]
    assert labels(rule, {"app": "X"})["enforcement"] == "enforced"
    assert silenced(file, rule, {"app": "Microsoft Teams"}, T + 10)
    assert not silenced(file, rule, {"app": "Microsoft Teams"}, T + 3600)
    assert not silenced(file, rule, {"app": "Outlook"}, T + 10)
