"""The alert lifecycle, pure and given the event time.

An alert (one rule's fingerprint: its rule and group values) fires, repeats at its
repeat interval while its condition lasts, and resolves once the condition has been
false for `resolve_after`. What destinations are told is the incident's business
(`incident.py`): an alert that starts firing joins one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

INACTIVE = "inactive"
FIRING = "firing"
RESOLVED = "resolved"


@dataclass(slots=True)
class Timing:
    repeat_interval: float
    resolve_after: float


@dataclass(slots=True)
class AlertState:
    """One fingerprint's memory: where it is in its lifecycle and which incident it belongs to."""

    fingerprint: str
    rule: str
    group: dict[str, str]
    status: str = INACTIVE  # inactive | firing | resolved
    starts_at: float | None = None  # event time it (last) started firing
    fired_at: float | None = None  # event time of its last firing decision (repeat interval counts from here)
    false_since: float | None = None  # event time its condition was first seen false while firing
    expected: float | None = None  # what it judges against while it lasts (spike: a count; unusual: a rate)
    severity: str | None = None  # the highest severity decided in this episode (a combined alert may escalate)
    incident: str | None = None  # the incident this episode joined
    held: bool = False  # firing but not notified: silenced or inhibited (re-checked while it fires)
    etag: str | None = None  # the store's version, for conditional writes

    @property
    def live(self) -> bool:
        """Needs evaluating still (what the store loads each batch)."""
        return self.status == FIRING

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("etag")
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any], etag: str | None = None) -> AlertState:
        """Fields of older versions (an `outbox` of decisions) are ignored: incidents hold them now."""
        fields = {k: v for k, v in data.items() if k in _STATE_FIELDS and k != "etag"}
        return cls(**fields, etag=etag)

    def copy(self) -> AlertState:
        return AlertState.from_data(self.to_data(), self.etag)


_STATE_FIELDS = frozenset(AlertState.__dataclass_fields__)


def step(state: AlertState, holds: bool, at: float, timing: Timing, expected: float | None = None) -> str | None:
    """Advance one fingerprint's lifecycle at event time `at`; returns the decision ('firing', 'resolved') or None.

    Mutates `state`; the caller writes it (conditionally) when anything changed.
    """
    if holds:
        state.false_since = None
        if state.status != FIRING:
            state.status, state.starts_at, state.fired_at, state.expected = FIRING, at, at, expected
            state.incident, state.held, state.severity = None, False, None
            return FIRING
        if state.fired_at is None or at - state.fired_at >= timing.repeat_interval:
            state.fired_at = at
            return FIRING
        return None
    if state.status != FIRING:
        return None
    if state.false_since is None:
        state.false_since = at
    if at - state.false_since >= timing.resolve_after:
        state.status, state.expected = RESOLVED, None
        return RESOLVED
    return None
