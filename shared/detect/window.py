"""Event-time window counts: one-minute buckets of judged and unbound sign-ins per rule and group.

Pure data and arithmetic, no I/O. A batch's sign-ins are aggregated here in
memory (`Tally`) and written once per bucket by the detection store, so the cost
follows minutes touched, not sign-ins. Event time places every count; the wall
clock never does, so a replay gives the windows live traffic gave. A sign-in
dated more than the allowed lateness behind the event clock is too late: it is
counted as such and lands in no window (its window has been judged already).
"""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

BUCKET_SECONDS = 60
TOP_PER_BUCKET = 10  # values kept per detail dimension per bucket: enough for a top-5 over a window
EXAMPLES_PER_BUCKET = 3
DETAILS = ("app", "resource", "user", "os", "status_code", "client_app")
USER_SKETCH = 64  # distinct users are exact up to this many per group, and estimated (about 13 %) beyond
_HASH_SPACE = 2**32


def user_hash(user: str, correlation_id: str) -> int:
    """A 32-bit hash of who signed in (case-insensitive); a sign-in without a user counts as its own person."""
    text = user.casefold() if user else "\x00" + correlation_id
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4).digest(), "big")


def merge_sketch(a: list[int], b: list[int]) -> list[int]:
    """The union of two distinct-user sketches: the smallest hashes of both (a K-minimum-values sketch)."""
    if not b:
        return a
    if not a:
        return list(b)
    union = set(a).union(b)
    return sorted(union) if len(union) <= USER_SKETCH else heapq.nsmallest(USER_SKETCH, union)


def distinct(sketch: list[int]) -> int:
    """How many distinct users a sketch stands for: exact below USER_SKETCH hashes, else the KMV estimate."""
    if len(sketch) < USER_SKETCH:
        return len(sketch)
    kth = max(sketch)
    return max(USER_SKETCH, round((USER_SKETCH - 1) * _HASH_SPACE / (kth + 1)))


def minute_of(at: float) -> int:
    """The bucket (minutes since the epoch) an event time falls in."""
    return int(at // BUCKET_SECONDS)


def minutes_in(seconds: float) -> int:
    """How many buckets a window of `seconds` spans (at least one)."""
    return max(1, round(seconds / BUCKET_SECONDS))


def steps(start: float, end: float) -> list[float]:
    """The event times to evaluate at when the clock moves from `start` to `end`: the last second of each minute
    crossed, then `end`. Evaluating per minute makes decisions independent of how records were batched."""
    points = [(m + 1) * BUCKET_SECONDS - 1.0 for m in range(minute_of(start), minute_of(end))]
    return [p for p in points if p > start] + [end]


def is_late(at: float, clock: float, lateness: float) -> bool:
    """Too late for its window: older than the event clock minus the allowed lateness."""
    return at < clock - lateness


@dataclass(slots=True)
class Counts:
    """One group's counts in one bucket (or summed over a window)."""

    judged: int = 0
    unbound: int = 0
    details: dict[str, Counter[str]] = field(default_factory=dict)  # dimension -> value -> unbound sign-ins
    examples: list[str] = field(default_factory=list)  # correlation IDs of unbound sign-ins
    users: list[int] = field(default_factory=list)  # sketch of the distinct users with unbound sign-ins

    def add_unbound(self, describe: dict[str, Iterable[str]], correlation_id: str) -> None:
        self.unbound += 1
        for dimension, values in describe.items():
            counter = self.details.setdefault(dimension, Counter())
            counter.update(set(values))
        if len(self.examples) < EXAMPLES_PER_BUCKET and correlation_id not in self.examples:
            self.examples.append(correlation_id)
        user = next(iter(describe.get("user", ())), "")
        self.users = merge_sketch(self.users, [user_hash(user, correlation_id)])

    def merge(self, other: Counts, examples: int = EXAMPLES_PER_BUCKET) -> None:
        self.judged += other.judged
        self.unbound += other.unbound
        for dimension, counter in other.details.items():
            self.details.setdefault(dimension, Counter()).update(counter)
        for example in other.examples:
            if len(self.examples) < examples and example not in self.examples:
                self.examples.append(example)
        self.users = merge_sketch(self.users, other.users)

    @property
    def distinct_users(self) -> int:
        """People with an unbound sign-in: one user's device retrying ten times is one."""
        return distinct(self.users)

    def measure(self, count: str) -> int:
        """The unbound count a rule looks at: distinct `users`, or `signins`."""
        return self.distinct_users if count == "users" else self.unbound

    def top(self, dimension: str, limit: int = 5) -> list[tuple[str, int]]:
        return self.details.get(dimension, Counter()).most_common(limit)

    def to_data(self, top: int = TOP_PER_BUCKET, examples: int = EXAMPLES_PER_BUCKET) -> list[Any]:
        trimmed = {d: dict(c.most_common(top)) for d, c in self.details.items() if c} if top else {}
        return [self.judged, self.unbound, trimmed, self.examples[:examples], self.users]

    @classmethod
    def from_data(cls, data: list[Any]) -> Counts:
        """Rows written before users were counted have four items: their users are unknown (none)."""
        judged, unbound, details, examples, *users = data
        return cls(
            judged=int(judged),
            unbound=int(unbound),
            details={d: Counter({str(k): int(v) for k, v in c.items()}) for d, c in details.items()},
            examples=[str(e) for e in examples],
            users=[int(u) for u in users[0]] if users else [],
        )


# A bucket: rule name -> group key -> counts. Buckets: minute -> bucket.
Bucket = dict[str, dict[str, Counts]]
Buckets = dict[int, Bucket]


def merge_bucket(target: Bucket, increment: Bucket) -> None:
    """Add an increment into a stored bucket, in place (counts add up; merging is what makes writes cheap)."""
    for rule, groups in increment.items():
        stored = target.setdefault(rule, {})
        for key, counts in groups.items():
            stored.setdefault(key, Counts()).merge(counts)


def bucket_to_data(bucket: Bucket) -> dict[str, dict[str, list[Any]]]:
    return {rule: {key: c.to_data() for key, c in groups.items()} for rule, groups in bucket.items()}


def bucket_from_data(data: dict[str, dict[str, list[Any]]]) -> Bucket:
    return {rule: {key: Counts.from_data(c) for key, c in groups.items()} for rule, groups in data.items()}


def strip_details(bucket: Bucket) -> Bucket:
    """The counts without the detail counters: what a bucket shrinks to when it would not fit one entity."""
    return {
        rule: {key: Counts(c.judged, c.unbound, {}, c.examples[:1], c.users) for key, c in groups.items()}
        for rule, groups in bucket.items()
    }


@dataclass(slots=True)
class Span:
    """A window as a closed range of buckets."""

    first: int
    last: int

    def __contains__(self, minute: int) -> bool:
        return self.first <= minute <= self.last

    def minutes(self) -> range:
        return range(self.first, self.last + 1)


def current_span(clock: float, window: float) -> Span:
    """The buckets of the window that ends at `clock` (the bucket of `clock` included)."""
    last = minute_of(clock)
    return Span(last - minutes_in(window) + 1, last)


def baseline_span(clock: float, window: float, baseline: float) -> Span:
    """The buckets of the baseline: the `baseline` seconds just before the current window."""
    current = current_span(clock, window)
    return Span(current.first - minutes_in(baseline), current.first - 1)


def total(
    buckets: Buckets,
    rule: str,
    span: Span,
    detail: bool = True,
    *,
    keys: set[str] | None = None,
    people: bool = True,
) -> dict[str, Counts]:
    """Sum one rule's groups (all, or `keys`) over a span of buckets; without `detail`, only the counts and the
    people (what judging needs: the top lists and examples are summed only for what is decided, `detailed`);
    without `people` either, only the counts."""
    sums: dict[str, Counts] = {}
    for minute in span.minutes():
        for key, counts in buckets.get(minute, {}).get(rule, {}).items():
            if keys is not None and key not in keys:
                continue
            found = sums.get(key)
            if found is None:
                found = sums[key] = Counts()
            if detail:
                found.merge(counts, examples=5)
            else:
                found.judged += counts.judged
                found.unbound += counts.unbound
                if people:
                    found.users = merge_sketch(found.users, counts.users)
    return sums


def sums_of(buckets: Buckets, rule: str, span: Span, keys: set[str]) -> dict[str, Counts]:
    """The judged and unbound counts of some groups over a span (no people, no detail), each bucket looked up
    group by group or read through, whichever is less work: the cost follows the groups asked for, not every
    group the buckets hold. The same sums as `total(..., keys=keys, people=False)`, in another order."""
    sums: dict[str, Counts] = {}
    for minute in span.minutes():
        groups = buckets.get(minute, {}).get(rule)
        if not groups:
            continue
        if len(keys) < len(groups):
            found = [(key, groups[key]) for key in keys if key in groups]
        else:
            found = [(key, counts) for key, counts in groups.items() if key in keys]
        for key, counts in found:
            held = sums.get(key)
            if held is None:
                held = sums[key] = Counts()
            held.judged += counts.judged
            held.unbound += counts.unbound
    return sums


def detailed(buckets: Buckets, rule: str, span: Span, keys: Iterable[str]) -> Counts:
    """The full counts (top lists, examples) of some groups over a span, added up."""
    wanted = set(keys)
    sums = Counts()
    for minute in span.minutes():
        for key, counts in buckets.get(minute, {}).get(rule, {}).items():
            if key in wanted:
                sums.merge(counts, examples=5)
    return sums


@dataclass(slots=True)
class Tally:
    """A batch's increments, aggregated in memory before one write per bucket."""

    buckets: Buckets = field(default_factory=dict)
    late: int = 0  # sign-ins that came after their window had closed (not counted)

    def counts(self, minute: int, rule: str, key: str) -> Counts:
        return self.buckets.setdefault(minute, {}).setdefault(rule, {}).setdefault(key, Counts())

    def __bool__(self) -> bool:
        return bool(self.buckets)

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self.buckets))
