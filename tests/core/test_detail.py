"""The request-detail codec: one shape for what is stored, shown and reported, and the older shape still read."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.core.binding import Binding, Enforcement
from shared.core.detail import decode, encode, with_state
from shared.core.message import Message
from shared.core.record import read_message
from shared.core.request import judge
from shared.synth.records import body, policy, record


def test_stored_details_of_the_older_shape_are_normalised() -> None:
    stored = {"id": "r", "at": "2026-03-10T08:00:00.000Z", "policies": [["CA-TP01", "failure", True]], "code": 1008}
    shown = encode(decode(stored, "c"))
    assert shown["id"] == "r"
    assert shown["time"] == "2026-03-10T08:00:00.000Z"
    assert shown["policies"] == [{"name": "CA-TP01", "result": "failure", "not_satisfied": True}]
    assert shown["code"] == 1008
    assert shown["enforcement"] == "enforced"  # from the policy result, as rule 5 says


def test_a_judged_request_survives_the_round_trip() -> None:
    tp = policy(result="failure", not_satisfied=["SignInTokenProtection"])
    (accepted,) = read_message(Message(body([record(status="unbound", code=1008, policies=[tp])]))).accepted
    request = judge(accepted, 0.0)
    again = decode(encode(request), request.correlation_id, user=request.user)  # the user is the sign-in's
    assert again == request


def test_with_state_takes_the_merged_binding() -> None:
    merged = with_state({"id": "r", "binding": "bound"}, Binding.UNBOUND, Enforcement.REPORT_ONLY, 1002)
    assert (merged["binding"], merged["enforcement"], merged["code"]) == ("unbound", "report_only", 1002)


@given(
    st.dictionaries(
        st.text(max_size=12),
        st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.text(max_size=5), max_size=4)),
    )
)
def test_decode_never_fails_on_outside_input(item: dict[str, object]) -> None:
    request = decode(item, "c", index=3)
    assert request.correlation_id == "c"
    assert isinstance(encode(request), dict)
