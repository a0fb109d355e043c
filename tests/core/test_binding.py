"""Rules 2-5: a request's binding, status code and enforcement."""

from __future__ import annotations

import pytest

from shared.core.binding import Binding, Enforcement, code_of, read_policies, status_of
from shared.core.message import Message
from shared.core.record import read_message
from shared.core.request import Request, judge
from shared.synth.records import body, policy, record


def judged(rec: dict) -> Request:
    (accepted,) = read_message(Message(body([rec]))).accepted
    return judge(accepted, fallback_time=0.0)


def policies(*entries: object) -> object:
    """Policies as the reader hands them over: through a record, fast path or lenient path alike."""
    return judged(record(status=None, policies=list(entries)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("bound", Binding.BOUND),
        ("Bound", Binding.BOUND),
        ("UNBOUND", Binding.UNBOUND),
        ("unbound", Binding.UNBOUND),
        ("none", Binding.NOT_EVALUATED),
        ("unknownFutureValue", Binding.NOT_EVALUATED),
        ("something new", Binding.NOT_EVALUATED),
        (None, Binding.NOT_EVALUATED),
        (7, Binding.NOT_EVALUATED),
    ],
)
def test_rule2_binding_is_read_case_insensitively(raw: object, expected: Binding) -> None:
    assert status_of({"signInSessionStatus": raw})[0] is expected


@pytest.mark.parametrize("details", [None, {}, [], "bound", {"signInSessionStatusCode": 1002}])
def test_rule2_missing_or_empty_details_mean_not_evaluated(details: object) -> None:
    assert status_of(details)[0] is Binding.NOT_EVALUATED


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1008, 1008),
        ("1003", 1003),
        (" 1002 ", 1002),
        ("10x", None),
        (True, None),
        (None, None),
        (1.5, None),
        ("", None),
    ],
)
def test_rule4_status_code_as_integer(raw: object, expected: int | None) -> None:
    assert code_of(raw) == expected


def test_rule4_code_kept_for_unbound_request() -> None:
    request = judged(record(status="unbound", code="1008"))
    assert (request.binding, request.code) == (Binding.UNBOUND, 1008)


@pytest.mark.parametrize("control", ["SignInTokenProtection", "Binding", "signintokenprotection"])
def test_rule3_policy_not_satisfied_makes_request_unbound(control: str) -> None:
    tp = policy(result="reportOnlyFailure", controls=[control], not_satisfied=[control])
    request = judged(record(status=None, policies=[tp]))
    assert request.binding is Binding.UNBOUND


@pytest.mark.parametrize("result", ["notApplied", "reportOnlyNotApplied", "notEnabled", "NOTAPPLIED"])
def test_rule3_ignored_when_policy_did_not_apply(result: str) -> None:
    tp = policy(result=result, not_satisfied=["SignInTokenProtection"])
    request = judged(record(status="bound", policies=[tp]))
    assert request.binding is Binding.BOUND
    assert request.enforcement is Enforcement.NONE


def test_rule3_other_policies_do_not_count() -> None:
    other = policy("MFA", result="failure", controls=["SignInFrequency"], not_satisfied=["SignInFrequency"])
    request = judged(record(status="bound", policies=[other]))
    assert (request.binding, request.enforcement) == (Binding.BOUND, Enforcement.NONE)


def test_rule3_failure_without_the_control_unsatisfied_is_not_unbound() -> None:
    tp = policy(result="failure", not_satisfied=["SomethingElse"])
    request = judged(record(status="bound", policies=[tp]))
    assert request.binding is Binding.BOUND
    assert request.enforcement is Enforcement.ENFORCED


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("success", Enforcement.ENFORCED),
        ("failure", Enforcement.ENFORCED),
        ("reportOnlySuccess", Enforcement.REPORT_ONLY),
        ("reportOnlyFailure", Enforcement.REPORT_ONLY),
        ("reportOnlyInterrupted", Enforcement.REPORT_ONLY),
        ("reportOnlyNotApplied", Enforcement.NONE),
        ("unknownFutureValue", Enforcement.NONE),
        ("notApplied", Enforcement.NONE),
    ],
)
def test_rule5_enforcement_from_policy_result(result: str, expected: Enforcement) -> None:
    assert policies(policy(result=result)).enforcement is expected


def test_rule5_strongest_policy_wins_within_a_request() -> None:
    assert policies(policy("a", result="reportOnlyFailure"), policy("b", result="success")).enforcement is (
        Enforcement.ENFORCED
    )


def test_policies_that_are_not_a_list_or_not_objects_are_ignored() -> None:
    rec = record(status="bound")
    rec["properties"]["appliedConditionalAccessPolicies"] = "nope"
    assert judged(rec).enforcement is Enforcement.NONE
    assert policies(1, None, "x", policy(result="success")).enforcement is Enforcement.ENFORCED
    assert read_policies(None).enforcement is Enforcement.NONE
