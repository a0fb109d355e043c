"""Token protection policy changes on the readiness page: each change, and what its policy did before and after.

Pure. Per change, the requests its policy judged in the day before and the day after it (up to the policy's
next change), counted as Microsoft's impact queries count them (per request, deduplicated by request id): how
many the policy would have blocked in report-only, how many it blocked once enforced, and how many people that
touched. The timeline marks each change at its time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from shared.core.policy_change import PolicyChange, policy_key
from shared.core.request import Request
from shared.core.timestamp import iso

WINDOW = 86400.0  # the day before and the day after a change


def change_figures(requests: Iterable[Request], changes: Sequence[PolicyChange]) -> list[dict[str, Any]]:
    """Each change in time order, with its policy's figures before and after it."""
    ordered = sorted(changes, key=lambda c: (c.at, c.id))
    by_policy = _by_policy(requests)
    return [_figures(change, ordered, by_policy) for change in ordered]


def marks(changes: Sequence[PolicyChange]) -> list[dict[str, Any]]:
    """Where the timeline marks a change: its time and a short label."""
    return [{"at": iso(c.at), "label": f"{c.policy} {c.action}"} for c in sorted(changes, key=lambda c: (c.at, c.id))]


def _by_policy(requests: Iterable[Request]) -> dict[str, list[tuple[Request, str]]]:
    """Each policy's requests, with the policy's own result for each."""
    found: dict[str, list[tuple[Request, str]]] = {}
    for request in requests:
        for name, result, _ in request.policies:
            found.setdefault(policy_key(name), []).append((request, result.lower()))
    return found


def _figures(
    change: PolicyChange, ordered: list[PolicyChange], by_policy: dict[str, list[tuple[Request, str]]]
) -> dict[str, Any]:
    keys = {policy_key(change.policy), policy_key(change.renamed_from)} - {""}
    judged = [item for key in keys for item in by_policy.get(key, [])]
    later = [c.at for c in ordered if c.at > change.at and policy_key(c.policy) in keys]
    end = min([change.at + WINDOW, *later])
    return {
        "id": change.id,
        "at": iso(change.at),
        "policy": change.policy,
        "action": change.action,
        "actor": change.actor,
        "summary": change.summary,
        "enforces_now": change.enforces_now,
        "before": _side([i for i in judged if change.at - WINDOW <= i[0].at < change.at]),
        "after": _side([i for i in judged if change.at <= i[0].at < end]),
        "after_until": iso(end),
    }


def _side(judged: list[tuple[Request, str]]) -> dict[str, Any]:
    would = [r for r, result in judged if result == "reportonlyfailure"]
    blocked = [r for r, result in judged if result == "failure"]
    total = len(judged)
    return {
        "requests": total,
        "users": len({r.user for r, _ in judged}),
        "would_be_blocked": len(would),
        "blocked": len(blocked),
        "share": (len(would) + len(blocked)) / total if total else None,
        "users_blocked": len({r.user for r in would + blocked}),
    }
