"""Incidents, pure: one incident is one notification per destination, headed by its highest severity; what
joins, what escalates, what repeats, what resolves; and Alertmanager-style inhibition."""

from __future__ import annotations

from typing import Any

from shared.core.alert import Alert, fingerprint
from shared.detect.incident import (
    OPEN,
    RESOLVED,
    IncidentState,
    find,
    incident_id,
    join,
    leaning_of,
    notification,
    plan,
    scope_of,
    told,
    update,
)
from shared.detect.routing import inhibited
from shared.detect.rules import parse_rules
from shared.detect.window import Counts

T = 1_773_129_600.0
REPEAT, WAIT = 4 * 3600.0, 30.0


def member(rule: str, severity: str, receivers: list[str], at: float, scope: list[list[str]]) -> dict[str, Any]:
    key = fingerprint(rule, {"app": "Teams"})
    alert = Alert(key, rule, "firing", at, title=f"{rule} title", severity=severity, receivers=receivers)  # type: ignore[arg-type]
    return {
        "fingerprint": key,
        "rule": rule,
        "severity": severity,
        "status": "firing",
        "receivers": receivers,
        "due_at": at + WAIT,
        "scope": scope,
        "alert": alert.to_dict(),
    }


def tell(incident: IncidentState, at: float, final: bool = False) -> list[Any]:
    """What a flush at `at` hands over, recorded as told (as the detector does after the outbox write)."""
    made = plan(incident, at, REPEAT, WAIT, flush_all=final)
    notes = [notification(incident, p, at) for p in made]
    for p in made:
        told(incident, p.receiver, p.reason, p.severity, at)
    return notes


TEAMS = [["app", "Microsoft Teams"]]


def test_alerts_of_one_incident_reach_each_destination_once_headed_by_the_highest_severity() -> None:
    incident = IncidentState(incident_id("x", T), T)
    join(incident, member("would-block", "warning", ["teams", "webhook"], T, TEAMS))
    join(incident, member("blocked", "critical", ["teams", "webhook", "pagerduty"], T + 10, TEAMS))
    assert tell(incident, T + 29) == []  # the group wait
    notes = tell(incident, T + 40)
    assert sorted(n.receiver for n in notes) == ["pagerduty", "teams", "webhook"]
    teams = next(n for n in notes if n.receiver == "teams")
    assert teams.reason == "opened" and teams.severity == "critical"
    assert [a.severity for a in teams.alerts] == ["critical", "warning"]  # the header is the highest it holds
    assert [a.rule for a in next(n for n in notes if n.receiver == "pagerduty").alerts] == ["blocked"]
    assert tell(incident, T + 600) == []  # nothing new: no second page
    # A third alert of the same severity joins quietly: it shows in the next notification, not as a page.
    join(incident, member("platform", "warning", ["teams", "webhook"], T + 700, TEAMS))
    assert tell(incident, T + 800) == []


def test_an_alert_of_a_higher_severity_escalates_once() -> None:
    incident = IncidentState("inc-1", T)
    join(incident, member("would-block", "warning", ["teams"], T, TEAMS))
    (opened,) = tell(incident, T + 60)
    assert (opened.reason, opened.severity) == ("opened", "warning")
    join(incident, member("blocked", "critical", ["teams"], T + 120, TEAMS))
    assert tell(incident, T + 130) == []  # its own group wait first
    (escalated,) = tell(incident, T + 160)
    assert (escalated.reason, escalated.severity) == ("escalated", "critical")
    assert escalated.alerts[0].severity == "critical"
    assert tell(incident, T + 400) == []
    assert opened.id != escalated.id


def test_an_open_incident_is_repeated_at_the_repeat_interval_and_resolved_once() -> None:
    incident = IncidentState("inc-2", T)
    first = member("blocked", "critical", ["pagerduty"], T, TEAMS)
    join(incident, first)
    tell(incident, T + 60)
    assert [n.reason for n in tell(incident, T + 60 + REPEAT)] == ["repeated"]
    update(incident, first["fingerprint"], "resolved", {**first["alert"], "status": "resolved"}, T + 20_000)
    assert incident.status == RESOLVED and incident.live
    assert tell(incident, T + 20_010) == []  # waits the group wait: a flap may yet reopen it
    (resolved,) = tell(incident, T + 20_040)
    assert resolved.reason == "resolved" and resolved.status == "resolved"
    assert all(a.status == "resolved" for a in resolved.alerts)
    assert not incident.live and tell(incident, T + 30_000) == []


def test_an_incident_resolved_before_anyone_was_told_sends_nothing() -> None:
    incident = IncidentState("inc-3", T)
    first = member("blocked", "critical", ["teams"], T, TEAMS)
    join(incident, first)
    update(incident, first["fingerprint"], "resolved", first["alert"], T + 10)
    assert tell(incident, T + 3600) == [] and not incident.live


def test_a_flap_within_the_resolve_wait_reopens_the_incident_instead_of_paging_again() -> None:
    incident = IncidentState("inc-4", T)
    first = member("blocked", "critical", ["teams"], T, TEAMS)
    join(incident, first)
    tell(incident, T + 60)
    update(incident, first["fingerprint"], "resolved", first["alert"], T + 900)
    assert find([incident], TEAMS, T + 910) is incident
    join(incident, {**first, "due_at": T + 940})
    assert incident.status == OPEN and tell(incident, T + 1000) == []


def test_alerts_correlate_on_a_shared_value_of_their_group_or_of_most_of_their_sign_ins() -> None:
    ios = Counts()
    for index in range(10):
        ios.add_unbound({"os": ["iOS"] if index < 8 else ["Android"], "status_code": ["1003"]}, f"c{index}")
    app_scope = scope_of({"app": "Outlook", "enforcement": "enforced"}, ios, ("app", "os", "status_code"), 0.6)
    assert app_scope == [["app", "Outlook"], ["os", "iOS"], ["status_code", "1003"]]
    platform = IncidentState("inc-ios", T, members={})
    join(platform, member("platform", "critical", ["teams"], T, [["os", "iOS"]]))
    assert find([platform], app_scope, T) is platform
    assert find([platform], [["app", "Teams"], ["os", "Windows10"]], T) is None
    assert scope_of({"app": "Outlook"}, ios, ("app", "os"), 0.9) == [["app", "Outlook"]]  # 80 % is not 90 %


def test_a_big_app_leaning_towards_what_an_incident_is_about_joins_it() -> None:
    """A macOS incident: Outlook's alert has many usual (Windows) unbound sign-ins besides the macOS ones, so macOS
    is its most frequent platform without being most of them; it still belongs to the macOS incident."""
    outlook = Counts()
    for index in range(100):
        outlook.add_unbound({"os": ["MacOs"] if index < 45 else ["Windows10"] if index < 80 else ["Ios"]}, f"c{index}")
    group = {"app": "Outlook"}
    scope = scope_of(group, outlook, ("app", "os"), 0.6)
    leaning = leaning_of(group, outlook, ("app", "os"), 0.3)
    assert scope == [["app", "Outlook"]] and leaning == [["os", "MacOs"]]
    macos = IncidentState("inc-mac", T)
    join(macos, {**member("platform", "critical", ["teams"], T, [["os", "MacOs"]]), "own": [["os", "MacOs"]]})
    assert find([macos], scope, T + 60, leaning) is macos
    leaning_windows = IncidentState("inc-other", T)  # an incident that merely saw Windows sign-ins is not about it
    join(leaning_windows, member("app", "critical", ["teams"], T, [["app", "Teams"], ["os", "Windows10"]]))
    assert find([leaning_windows], scope, T + 60, [["os", "Windows10"]]) is None


def test_an_incident_lists_at_most_max_alerts_in_full_and_counts_the_rest() -> None:
    incident = IncidentState("inc-5", T)
    for index in range(5):
        entry = member(f"r{index}", "warning", ["teams"], T, TEAMS)
        join(incident, entry, max_alerts=3)
    (note,) = tell(incident, T + 60)
    assert len(note.alerts) == 3 and note.omitted == 2


def test_notification_ids_are_stable_for_what_is_told() -> None:
    def opened() -> Any:
        incident = IncidentState("inc-6", T)
        join(incident, member("blocked", "critical", ["teams"], T, TEAMS))
        return tell(incident, T + 60 + len(str(T)))[0]

    assert opened().id == opened().id


def test_state_round_trips() -> None:
    incident = IncidentState("inc-7", T)
    join(incident, member("blocked", "critical", ["teams"], T, TEAMS))
    tell(incident, T + 60)
    assert IncidentState.from_data(incident.to_data(), "e").to_data() == incident.to_data()


INHIBIT = parse_rules(
    {
        "inhibit_rules": [
            {"source_match": {"rule": "platform"}, "target_match": {"rule": "app"}, "equal": ["enforcement"]},
            {"source_match": {"severity": "critical"}, "target_match": {"severity": "warning"}, "equal": ["app"]},
        ]
    }
)


def test_inhibition_mutes_targets_while_a_source_with_the_same_equal_labels_fires() -> None:
    target = {"rule": "app", "severity": "critical", "enforcement": "enforced", "app": "Outlook"}
    source = {"rule": "platform", "severity": "critical", "enforcement": "enforced", "os": "iOS"}
    assert inhibited(INHIBIT, target, [source])
    assert not inhibited(INHIBIT, target, [{**source, "enforcement": "report_only"}])  # equal labels differ
    assert not inhibited(INHIBIT, target, [])
    assert not inhibited(INHIBIT, source, [target])  # not a target
    warning = {"rule": "other", "severity": "warning", "app": "Outlook"}
    assert inhibited(INHIBIT, warning, [{"rule": "x", "severity": "critical", "app": "Outlook"}])
    assert not inhibited(INHIBIT, warning, [{"rule": "x", "severity": "critical", "app": "Teams"}])


def test_an_alert_matching_both_sides_is_not_muted_by_its_own_kind() -> None:
    rules = parse_rules({"inhibit_rules": [{"source_match": {"kind": "unusual"}, "target_match": {"kind": "unusual"}}]})
    one, two = {"kind": "unusual", "app": "A"}, {"kind": "unusual", "app": "B"}
    assert not inhibited(rules, one, [two])
