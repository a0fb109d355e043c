"""Event-time window buckets: placement, spans, merging and the evaluation steps."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.detect.window import (
    USER_SKETCH,
    Counts,
    Tally,
    baseline_span,
    bucket_from_data,
    bucket_to_data,
    current_span,
    is_late,
    merge_bucket,
    minute_of,
    steps,
    strip_details,
    total,
)

T = 1_773_129_600.0  # 2026-03-10T08:00:00Z, a minute boundary


def test_minute_of_places_event_times_in_their_minute() -> None:
    assert minute_of(T) == minute_of(T + 59.9) == minute_of(T + 60) - 1


def test_current_window_ends_with_the_clock_minute_and_baseline_precedes_it() -> None:
    window = current_span(T + 600, 600)
    assert window.last == minute_of(T + 600)
    assert len(window.minutes()) == 10
    base = baseline_span(T + 600, 600, 3600)
    assert base.last == window.first - 1
    assert len(base.minutes()) == 60


def test_lateness_is_measured_from_the_clock() -> None:
    assert not is_late(T - 899, T, 900)
    assert is_late(T - 901, T, 900)


def test_steps_visit_each_minute_crossed_then_the_clock() -> None:
    points = steps(T + 10, T + 200)
    assert points == [T + 59, T + 119, T + 179, T + 200]
    assert steps(T + 5, T + 5) == [T + 5]
    assert steps(T + 59.5, T + 61) == [T + 61]


def test_counts_merge_keeps_details_and_a_few_examples() -> None:
    one = Counts()
    for index in range(5):
        one.add_unbound({"app": ["Teams"], "status_code": ["1008"]}, f"c{index}")
    one.judged = 7
    other = Counts(judged=1)
    other.add_unbound({"app": ["Outlook", "Teams"]}, "x")
    one.merge(other)
    assert (one.judged, one.unbound) == (8, 6)
    assert one.top("app") == [("Teams", 6), ("Outlook", 1)]
    assert one.examples == ["c0", "c1", "c2"]


def test_a_value_listed_twice_for_one_signin_counts_once() -> None:
    counts = Counts()
    counts.add_unbound({"app": ["Teams", "Teams"]}, "c")
    assert counts.top("app") == [("Teams", 1)]


def test_bucket_data_round_trips_and_merges_additively() -> None:
    tally = Tally()
    tally.counts(10, "r", '["Teams"]').add_unbound({"app": ["Teams"]}, "a")
    tally.counts(10, "r", '["Teams"]').judged += 2
    stored = bucket_from_data(bucket_to_data(tally.buckets[10]))
    merge_bucket(stored, tally.buckets[10])
    counts = stored["r"]['["Teams"]']
    assert (counts.judged, counts.unbound) == (4, 2)
    assert counts.top("app") == [("Teams", 2)]


def test_total_sums_only_the_span() -> None:
    tally = Tally()
    for minute in (minute_of(T) - 1, minute_of(T), minute_of(T) + 1):
        tally.counts(minute, "r", "k").add_unbound({}, str(minute))
    sums = total(tally.buckets, "r", current_span(T + 60, 120))
    assert sums["k"].unbound == 2
    assert total(tally.buckets, "other", current_span(T + 60, 120)) == {}


def test_strip_details_keeps_counts() -> None:
    tally = Tally()
    counts = tally.counts(1, "r", "k")
    counts.add_unbound({"user": [f"u{i}" for i in range(50)]}, "a")
    counts.judged = 3
    stripped = strip_details(tally.buckets[1])["r"]["k"]
    assert (stripped.judged, stripped.unbound, stripped.details) == (3, 1, {})


# --- people: the distinct-user sketch ---


def people(users: list[str], tag: str = "c") -> Counts:
    counts = Counts()
    for index, user in enumerate(users):
        counts.add_unbound({"user": [user]}, f"{tag}{index}")
    return counts


def test_one_person_retrying_is_one_person_and_case_does_not_matter() -> None:
    counts = people(["Adele@Contoso.com"] * 8 + ["adele@contoso.com"])
    assert (counts.unbound, counts.distinct_users) == (9, 1)
    assert (counts.measure("signins"), counts.measure("users")) == (9, 1)


def test_sign_ins_without_a_user_count_as_their_own_person() -> None:
    assert people(["", "", ""]).distinct_users == 3


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2_000), max_size=400), st.integers(1, 6))
def test_people_add_up_across_buckets_like_a_set_exact_to_64_then_estimated(users: list[int], parts: int) -> None:
    """Merging the buckets of a window counts each person once, in any order: exactly below 64 people, within
    about 13 % (one standard error) above, so within 40 % here."""
    names = [f"u{u}@contoso.com" for u in users]
    chunks = [people(names[i::parts], tag=f"{i}-") for i in range(parts)]
    merged, backwards = Counts(), Counts()
    for chunk in chunks:
        merged.merge(chunk)
    for chunk in reversed(chunks):
        backwards.merge(chunk)
    truth = len(set(names))
    assert merged.users == backwards.users
    if truth < USER_SKETCH:
        assert merged.distinct_users == truth
    else:
        assert abs(merged.distinct_users - truth) <= 0.4 * truth


def test_buckets_written_before_people_were_counted_still_read() -> None:
    old = Counts.from_data([5, 2, {"app": {"Teams": 2}}, ["c1"]])
    assert (old.judged, old.unbound, old.users) == (5, 2, [])
    again = Counts.from_data(people(["a", "b"]).to_data())
    assert again.distinct_users == 2
