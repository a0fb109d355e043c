"""The alert lifecycle, pure: fire, repeat, resolve, and the alert line and content (incidents: test_incident.py)."""

from __future__ import annotations

from shared.core.alert import Alert, fingerprint
from shared.detect.content import render
from shared.detect.kinds.base import Finding
from shared.detect.lifecycle import FIRING, RESOLVED, AlertState, Timing, step
from shared.detect.rules import parse_rules
from shared.detect.window import Counts

T = 1_773_129_600.0
TIMING = Timing(repeat_interval=3600, resolve_after=600)


def state() -> AlertState:
    return AlertState(fingerprint("r", {"app": "Teams"}), "r", {"app": "Teams"})


def test_fires_once_then_repeats_at_the_repeat_interval() -> None:
    s = state()
    assert step(s, True, T, TIMING) == FIRING
    assert s.starts_at == T
    assert step(s, True, T + 60, TIMING) is None
    assert step(s, True, T + 3599, TIMING) is None
    assert step(s, True, T + 3600, TIMING) == FIRING
    assert s.starts_at == T  # a repeat is the same episode


def test_resolves_once_the_condition_has_been_false_long_enough() -> None:
    s = state()
    step(s, True, T, TIMING)
    assert step(s, False, T + 60, TIMING) is None
    assert step(s, False, T + 600, TIMING) is None
    assert step(s, True, T + 620, TIMING) is None  # flapped back: still the same alert, the clock restarts
    assert s.false_since is None
    step(s, False, T + 700, TIMING)
    assert step(s, False, T + 1299, TIMING) is None
    assert step(s, False, T + 1300, TIMING) == RESOLVED
    assert step(s, False, T + 2000, TIMING) is None
    assert not s.live


def test_a_new_episode_starts_after_a_resolve() -> None:
    s = state()
    step(s, True, T, TIMING)
    step(s, False, T + 10, TIMING)
    step(s, False, T + 700, TIMING)
    assert step(s, True, T + 800, TIMING) == FIRING
    assert s.starts_at == T + 800


def test_spike_keeps_the_expected_count_it_started_with() -> None:
    s = state()
    step(s, True, T, TIMING, expected=1.5)
    step(s, True, T + 60, TIMING, expected=9.0)
    assert s.expected == 1.5


def test_state_round_trips_and_reads_older_rows() -> None:
    s = state()
    step(s, True, T, TIMING, expected=2.0)
    s.incident = "inc-00000000000000000000"
    assert AlertState.from_data(s.to_data(), "e").to_data() == s.to_data()
    older = {**s.to_data(), "outbox": [{"rule": "r"}], "outbox_since": T, "notified": True}  # before incidents
    assert AlertState.from_data(older).to_data() == s.to_data()


def test_a_new_episode_belongs_to_no_incident_until_it_joins_one() -> None:
    s = state()
    step(s, True, T, TIMING)
    s.incident, s.held = "inc-a", True
    step(s, False, T + 10, TIMING)
    step(s, False, T + 700, TIMING)
    step(s, True, T + 800, TIMING)
    assert (s.incident, s.held) == (None, False)


def test_fingerprints_are_stable_and_order_free() -> None:
    assert fingerprint("r", {"a": "1", "b": "2"}) == fingerprint("r", {"b": "2", "a": "1"})
    assert fingerprint("r", {"a": "1"}) != fingerprint("s", {"a": "1"})


def test_the_alert_line_and_what_it_says() -> None:
    rule = parse_rules(
        {
            "rules": [
                {
                    "name": "spike",
                    "kind": "spike",
                    "baseline": "1h",
                    "spike_height": 5,
                    "group_by": ["app"],
                    "match": {"enforcement": "report_only"},
                    "title": "Unbound spike",
                }
            ]
        }
    ).rules[0]
    counts = Counts(judged=0)
    for index in range(12):
        counts.add_unbound(
            {"app": ["Microsoft Teams"], "status_code": ["1008"], "user": [f"u{index % 3}"], "os": ["Windows10"]},
            f"corr-{index}",
        )
    finding = Finding(rule, '["Microsoft Teams"]', {"app": "Microsoft Teams"}, True, counts, 12.0, 2.0, 1.0, "12 vs 1")
    made = render(finding, "firing", T, starts_at=T, receivers=["teams"], public_url="https://bw.example")
    line = made.line()
    assert list(line)[:6] == ["type", "status", "rule", "fingerprint", "at", "group"]
    assert line["at"] == "2026-03-10T08:00:00.000Z"
    assert line["group"] == {"app": "Microsoft Teams"}
    assert line["enforcement"] == "report_only"
    assert "would be blocked" in line["summary"]
    assert "theft" not in line["summary"].lower()
    assert line["codes"][0]["code"] == 1008 and "broker" in line["codes"][0]["fix"]
    assert line["top"]["users"][0][1] == 4
    assert line["examples"] == ["corr-0", "corr-1", "corr-2"]
    assert 'AppDisplayName == "Microsoft Teams"' in line["kql"]
    assert "reportOnlyFailure" in line["kql"]
    assert set(line["links"]) == {"Entra sign-in logs", "bindwatch", "Lookup corr-0", "Lookup corr-1", "Lookup corr-2"}
    assert line["links"]["Lookup corr-0"] == "https://bw.example/api/signins/corr-0"
    assert Alert.from_dict(made.to_dict()) == made
