"""The timeline: sign-ins per round time bucket, by verdict (expected-unbound apart)."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from shared.core.signin import BOUND, UNBOUND, UNEVALUATED
from shared.core.timestamp import iso

from .verdicts import SignInView

_STEPS = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 7 * 86400, 30 * 86400)


def bucket_seconds(span: float, most: int = 60) -> int:
    """The smallest round bucket that keeps the chart at `most` bars or fewer."""
    for step in _STEPS:
        if span / step <= most:
            return step
    return _STEPS[-1]


def timeline(views: list[SignInView], expected_ids: set[str]) -> dict[str, Any]:
    """Per sign-in, by the time of its first request: bound, unbound (apart: expected) and unevaluated."""
    if not views:
        return {"unit": "sign-in", "bucket_seconds": 0, "buckets": []}
    start = min(v.first_seen for v in views)
    step = bucket_seconds(max(v.first_seen for v in views) - start)
    origin = start - start % step
    rows: dict[int, Counter[str]] = defaultdict(Counter)
    for view in views:
        series = "expected_unbound" if view.correlation_id in expected_ids else view.verdict
        rows[int((view.first_seen - origin) // step)][series] += 1
    buckets = [
        {"start": iso(origin + i * step), **{s: rows[i][s] for s in (BOUND, UNBOUND, "expected_unbound", UNEVALUATED)}}
        for i in range(max(rows) + 1)
    ]
    return {"unit": "sign-in", "bucket_seconds": step, "buckets": buckets}
