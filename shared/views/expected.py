"""Expected unbound traffic: browsers and unsupported platforms, which Token Protection does not bind."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from shared.core.binding import Binding
from shared.core.coverage import expected_reason
from shared.core.request import Request

from .impact import NO_CODE


def expected_traffic(requests: Iterable[Request], expected_ids: set[str], top: int) -> dict[str, Any]:
    """Unbound requests that are expected (browsers, unsupported platforms), apart from the rest."""
    by_reason: dict[str, Counter[str]] = defaultdict(Counter)
    detail: dict[str, dict[str, set[Any]]] = defaultdict(lambda: defaultdict(set))
    total = 0
    for request in requests:
        reason = expected_reason(request) if request.binding == Binding.UNBOUND else None
        if reason is None:
            continue
        total += 1
        by_reason[reason][request.app or "(no app)"] += 1
        detail[reason]["users"].add(request.user)
        detail[reason]["signins"].add(request.correlation_id)
        detail[reason]["codes"].add(NO_CODE if request.code is None else request.code)
    rows = [
        {
            "reason": reason,
            "requests": sum(apps.values()),
            "signins": len(detail[reason]["signins"]),
            "users": len(detail[reason]["users"]),
            "codes": sorted(detail[reason]["codes"]),
            "apps": [[app, count] for app, count in apps.most_common(top)],
        }
        for reason, apps in by_reason.items()
    ]
    rows.sort(key=lambda row: (-row["requests"], row["reason"]))
    return {"unit": "request", "requests": total, "signins": len(expected_ids), "by_reason": rows}
