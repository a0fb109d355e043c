"""Readiness figures: Microsoft's per-request definitions, bindwatch's per-sign-in verdicts, and their agreement."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.core.binding import Binding, Enforcement
from shared.core.coverage import expected_reason, is_supported_resource, platform
from shared.core.message import Message, Origin
from shared.core.request import Request, merge_copies
from shared.ingest.files import messages_from
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.ingest.replay import Replay
from shared.synth.records import BASE_TIME, body, policy, record
from shared.views.impact import outcome
from shared.views.lookup import MemoryDetails
from shared.views.readiness import Readiness, figures, from_details
from shared.views.timeline import bucket_seconds

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
BLOCK = ["SignInTokenProtection"]


def replay(records: list[dict[str, Any]], *observers: Any) -> Replay:
    """Run records through the function's own pipeline (one message per record, then drain)."""
    run = Replay(Pipeline(MemoryStore(), 600.0, observers=list(observers)))
    messages = [Message(body([r]), Origin(source=f"test:{i}")) for i, r in enumerate(records)]
    for _ in run.run(messages):
        pass
    return run


def replay_samples(*observers: Any) -> Replay:
    run = Replay(Pipeline(MemoryStore(), 600.0, observers=list(observers)))
    for _ in run.run(messages_from([str(SAMPLES)])):
        pass
    return run


def enforced_block(**kw: Any) -> dict[str, Any]:
    return record(status="unbound", policies=[policy("CA-TP01", result="failure", not_satisfied=BLOCK)], **kw)


def report_only_block(**kw: Any) -> dict[str, Any]:
    return record(status="unbound", policies=[policy("CA-TP02", result="reportOnlyFailure", not_satisfied=BLOCK)], **kw)


def allowed(**kw: Any) -> dict[str, Any]:
    return record(status="bound", code=0, policies=[policy("CA-TP02", result="reportOnlySuccess")], **kw)


def test_totals_agree_with_replay_summary_on_samples() -> None:
    readiness = Readiness()
    summary = replay_samples(readiness).summary()
    result = readiness.figures()
    signins = result["signins"]
    assert signins["judged"] == summary["signins"] > 0
    assert (signins["bound"], signins["unbound"], signins["unevaluated"]) == (
        summary["bound"],
        summary["unbound"],
        summary["unevaluated"],
    )
    assert result["requests"]["distinct"] == summary["requests"]
    assert signins["blocked"] + signins["would_be_blocked"] + signins["unbound_without_policy"] == signins["unbound"]
    assert (
        sum(
            sum(b[k] for k in ("bound", "unbound", "expected_unbound", "unevaluated"))
            for b in result["timeline"]["buckets"]
        )
        == summary["signins"]
    )


def test_microsoft_figures_per_request_deduplicated_by_id() -> None:
    copy = report_only_block(code=1003, user="apple@contoso.com")
    records = [
        allowed(user="a@contoso.com"),
        allowed(user="a@contoso.com"),
        allowed(user="b@contoso.com"),
        enforced_block(code=1002, user="c@contoso.com"),
        copy,
        copy,  # redelivered: one request, counted once
        record(status="unbound", code=1008, user="d@contoso.com"),  # no token protection policy: outside Block/Allow
    ]
    readiness = Readiness()
    replay(records, readiness)
    req = readiness.figures()["requests"]
    assert req["distinct"] == 6
    assert (req["evaluated"], req["allowed"], req["block"]) == (5, 3, 2)
    assert (req["blocked"], req["would_be_blocked"], req["self_remediable"]) == (1, 1, 1)
    assert req["pct_allowed"] == 60.0  # 3 / (3 + 2)
    assert req["pct_enforceable"] == 80.0  # (3 + 1 self-remediable) / (3 + 2)
    assert (req["users"], req["blocked_users"], req["self_remediable_users"]) == (4, 2, 1)


def test_no_evaluated_request_has_no_share() -> None:
    req = figures([], [])["requests"]
    assert req["pct_allowed"] is None
    assert req["pct_enforceable"] is None


def test_copies_merge_to_the_worst_binding_and_strongest_enforcement() -> None:
    first = _request(binding=Binding.BOUND, code=0, enforcement=Enforcement.REPORT_ONLY)
    worse = _request(
        binding=Binding.UNBOUND, code=1008, enforcement=Enforcement.NONE, policies=(("p", "failure", True),)
    )
    merged = merge_copies(first, worse)
    assert (merged.binding, merged.code, merged.enforcement) == (Binding.UNBOUND, 1008, Enforcement.REPORT_ONLY)
    assert merge_copies(worse, first).binding == Binding.UNBOUND
    assert outcome(merged) == "blocked"


def test_signin_verdicts_and_enforcement_modes() -> None:
    cid = "11111111-aaaa-bbbb-cccc-000000000001"
    records = [
        allowed(correlation_id=cid, user="mixed@contoso.com"),
        report_only_block(correlation_id=cid, code=1008, user="mixed@contoso.com", at=BASE_TIME + timedelta(seconds=5)),
        enforced_block(code=1002, user="blocked@contoso.com"),
        allowed(user="ready@contoso.com"),
        record(status=None, user="none@contoso.com"),
    ]
    readiness = Readiness()
    replay(records, readiness)
    s = readiness.figures()["signins"]
    assert (s["judged"], s["bound"], s["unbound"], s["unevaluated"]) == (4, 1, 2, 1)
    assert (s["blocked"], s["would_be_blocked"]) == (1, 1)


@pytest.mark.parametrize(
    ("os_name", "family"),
    [
        ("Windows10", "Windows"),
        ("Windows 11", "Windows"),
        ("MacOs", "macOS"),
        ("Mac OS X", "macOS"),
        ("Ios 18.2.1", "iOS/iPadOS"),
        ("iPadOS", "iOS/iPadOS"),
        ("Android", "Android"),
        ("Linux", "Linux"),
        ("", "Unknown"),
        ("Solaris", "Solaris"),
    ],
)
def test_platform_families(os_name: str, family: str) -> None:
    assert platform(os_name) == family


def test_expected_unbound_reasons() -> None:
    assert expected_reason(_request(client_app="Browser")) == "Browser client"
    assert expected_reason(_request(browser="Chrome 131.0.0", client_app="")) == "Browser client"
    assert expected_reason(_request(os="Android")) == "Unsupported platform: Android"
    assert expected_reason(_request(os="")) == "Unsupported platform: Unknown"
    assert expected_reason(_request()) is None
    # The browser preview for Azure Resource Manager is supported, so a browser there is not expected to be unbound.
    assert expected_reason(_request(client_app="Browser", resource="Azure Resource Manager")) is None


@pytest.mark.parametrize(
    ("resource", "supported"),
    [
        ("Office 365 Exchange Online", True),
        ("OFFICE 365 SHAREPOINT ONLINE", True),
        ("Microsoft Teams Services", True),
        ("Windows Cloud Login", True),
        ("Azure Virtual Desktop", True),
        ("Windows 365", True),
        ("Azure Resource Manager", True),
        ("00000002-0000-0ff1-ce00-000000000000", True),
        ("797f4846-ba00-4fd7-ba43-dac1f8f63013", True),
        ("Microsoft Graph", False),
        ("Office 365 Yammer", False),
        ("00000003-0000-0000-c000-000000000000", False),
    ],
)
def test_supported_resources(resource: str, supported: bool) -> None:
    assert is_supported_resource(resource) is supported


def test_users_ready_break_expected_and_unevaluated() -> None:
    records = [
        *(allowed(user="ready@contoso.com", at=BASE_TIME + timedelta(hours=7 * i)) for i in range(5)),
        allowed(user="new@contoso.com"),
        allowed(user="new@contoso.com", at=BASE_TIME + timedelta(minutes=1)),
        allowed(user="breaks@contoso.com"),
        report_only_block(user="breaks@contoso.com", code=1008, app="Microsoft Teams"),
        enforced_block(user="breaks@contoso.com", code=1002, app="Microsoft Outlook"),
        report_only_block(user="apple@contoso.com", code=1004, os="MacOs"),
        report_only_block(user="web@contoso.com", code=1002, client_app="Browser"),
        report_only_block(user="phone@contoso.com", code=1002, os="Android", trust_type=""),
        record(status=None, user="quiet@contoso.com"),
    ]
    readiness = Readiness()
    replay(records, readiness)
    users = readiness.figures()["users"]
    assert [u["user"] for u in users["ready"]] == ["ready@contoso.com"]  # 5 sign-ins over 2 days: enough history
    assert users["ready"][0]["signins"] == 5
    # Only bound, but 2 sign-ins in a minute prove too little to call the user ready (the "one sign-in").
    assert users["too_little_history"] == [{"user": "new@contoso.com", "signins": 2, "days": 1}]
    breaking = {u["user"]: u for u in users["would_break"]}
    assert set(breaking) == {"breaks@contoso.com", "apple@contoso.com"}
    assert breaking["breaks@contoso.com"]["codes"] == [1002, 1008]
    assert breaking["breaks@contoso.com"]["unbound_signins"] == 2
    assert breaking["breaks@contoso.com"]["apps"] == ["Microsoft Outlook", "Microsoft Teams"]
    assert breaking["apple@contoso.com"]["self_remediable_only"] is True
    assert breaking["breaks@contoso.com"]["self_remediable_only"] is False
    assert users["expected_only_total"] == 2  # the browser and the Android user alarm nobody
    assert users["not_evaluated_total"] == 1
    assert (
        users["would_break_total"] + users["ready_total"] + users["too_little_history_total"] + 3 == users["total"] == 7
    )


def test_expected_traffic_is_apart_and_the_figures_add_up() -> None:
    readiness = Readiness()
    replay_samples(readiness)
    result = readiness.figures(top=100)
    req, expected = result["requests"], result["expected"]
    assert expected["requests"] > 0
    assert {row["reason"] for row in expected["by_reason"]} >= {"Browser client"}
    for key, rows in result["breakdowns"].items():
        shown = sum(r["blocked"] + r["would_be_blocked"] for r in rows)
        expected_blocks = _expected_blocks(readiness)
        assert shown + expected_blocks == req["block"], key
    code_total = sum(c["unbound_requests"] for c in result["codes"])
    unbound = sum(1 for r in readiness.requests.values() if r.binding == Binding.UNBOUND)
    assert code_total == unbound  # expected-unbound requests are in the code table, in their own column
    assert sum(c["expected_unbound"] for c in result["codes"]) == expected["requests"]
    for c in result["codes"]:
        parts = c["would_be_blocked"] + c["blocked"] + c["no_policy"] + c["expected_unbound"]
        assert parts <= c["unbound_requests"]


def _expected_blocks(readiness: Readiness) -> int:
    return sum(
        1
        for r in readiness.requests.values()
        if r.binding == Binding.UNBOUND and expected_reason(r) and outcome(r) in ("blocked", "would_block")
    )


def test_codes_carry_meaning_fix_and_self_remediable() -> None:
    readiness = Readiness()
    replay([report_only_block(code=1003), enforced_block(code=1008), enforced_block(code=None)], readiness)
    codes = {c["code"]: c for c in readiness.figures()["codes"]}
    assert set(codes) == {1003, 1008, None}
    assert codes[1003]["self_remediable"] is True
    assert codes[1008]["self_remediable"] is False
    assert "not evidence of token theft" in codes[1008]["meaning"]
    assert codes[1008]["blocked"] == 1
    assert codes[1003]["would_be_blocked"] == 1
    assert codes[None]["meaning"] == "Unbound without a status code."


def test_browser_policy_hint_shows_the_requests_that_prove_it() -> None:
    cid = "22222222-aaaa-bbbb-cccc-000000000002"
    records = [
        report_only_block(correlation_id=cid, code=1002, client_app="Browser", app="Microsoft Teams", user="w@c.com"),
        allowed(client_app="Browser", resource="Azure Resource Manager"),  # the supported browser preview
        allowed(),
    ]
    readiness = Readiness()
    replay(records, readiness)
    hints = readiness.figures()["hints"]
    assert [h["kind"] for h in hints] == ["browser"]
    hint = hints[0]
    assert hint["requests"] == 1
    assert hint["would_be_blocked"] == 1
    assert hint["policies"] == ["CA-TP02"]
    assert hint["examples"][0]["correlation_id"] == cid
    assert hint["examples"][0]["user"] == "w@c.com"
    assert hint["targets"] == [["Microsoft Teams", 1]]


def test_unsupported_resource_hint_points_at_the_office_365_app_group() -> None:
    readiness = Readiness()
    replay([allowed(resource="Microsoft Graph"), allowed(resource="Office 365 Exchange Online")], readiness)
    hints = readiness.figures()["hints"]
    assert [h["kind"] for h in hints] == ["unsupported_resource"]
    assert hints[0]["targets"] == [["Microsoft Graph", 1]]
    assert "Office 365" in hints[0]["advice"]


def test_no_hint_without_a_token_protection_policy() -> None:
    readiness = Readiness()
    replay([record(status="unbound", code=1008, client_app="Browser", resource="Microsoft Graph")], readiness)
    assert readiness.figures()["hints"] == []


def test_stored_details_give_the_same_figures_as_the_stream() -> None:
    """The report over the store (`--store table`) must read the detail shape back to the same figures."""
    readiness, details = Readiness(), MemoryDetails()
    replay_samples(readiness, details)
    requests, signins = from_details(details.signin_details())
    assert figures(requests, signins) == readiness.figures()


def test_open_signins_are_left_out_of_the_stored_report() -> None:
    details = MemoryDetails()
    run = Replay(Pipeline(MemoryStore(), 600.0, observers=[details]))
    run.pipeline.ingest([Message(body([allowed()]), Origin(source="t"))])  # no drain: the sign-in stays open
    requests, signins = from_details(details.signin_details())
    assert signins == []
    assert requests == []


@pytest.mark.parametrize(
    ("span", "step"), [(0, 60), (3600, 60), (3 * 3600, 300), (2 * 86400, 3600), (90 * 86400, 7 * 86400)]
)
def test_bucket_size_keeps_the_chart_readable(span: float, step: int) -> None:
    assert bucket_seconds(span) == step


def _request(**overrides: Any) -> Request:
    values: dict[str, Any] = {
        "id": "r1",
        "correlation_id": "c1",
        "category": "NonInteractiveUserSignInLogs",
        "at": BASE_TIME.timestamp(),
        "binding": Binding.UNBOUND,
        "enforcement": Enforcement.REPORT_ONLY,
        "code": 1002,
        "user": "u@contoso.com",
        "app": "Microsoft Teams",
        "resource": "Office 365 Exchange Online",
        "os": "Windows10",
        "trust_type": "Azure AD joined",
        "client_app": "Mobile Apps and Desktop clients",
        "device_id": "",
        "browser": "Rich Client 4.61.0.0",
        "policies": (("CA-TP02", "reportonlyfailure", True),),
    }
    values.update(overrides)
    return Request(**values)
