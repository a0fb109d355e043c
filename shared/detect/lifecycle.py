"""The alert lifecycle, pure and given the event time.

An alert fires, repeats at its repeat interval while its condition lasts, and
resolves once the condition has been false for `resolve_after`. Decisions wait
in the alert's outbox for the group wait, so alerts that fire together for one
destination go out as one notification.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from shared.core.alert import Alert, Notification

INACTIVE = "inactive"
FIRING = "firing"
RESOLVED = "resolved"


@dataclass(slots=True)
class Timing:
    repeat_interval: float
    resolve_after: float


@dataclass(slots=True)
class AlertState:
    """One fingerprint's memory: where it is in its lifecycle and what waits to be notified."""

    fingerprint: str
    rule: str
    group: dict[str, str]
    status: str = INACTIVE  # inactive | firing | resolved
    starts_at: float | None = None  # event time it (last) started firing
    fired_at: float | None = None  # event time of its last firing decision (repeat interval counts from here)
    false_since: float | None = None  # event time its condition was first seen false while firing
    expected: float | None = None  # spike rules: the expected count when it started (kept while it lasts)
    outbox: list[dict[str, Any]] = field(default_factory=list)  # Alert dicts decided, not yet notified
    outbox_since: float | None = None
    notified: bool = False  # a firing decision of this episode has gone out
    etag: str | None = None  # the store's version, for conditional writes

    @property
    def live(self) -> bool:
        """Needs evaluating or notifying still (what the store loads each batch)."""
        return self.status == FIRING or bool(self.outbox)

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("etag")
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any], etag: str | None = None) -> AlertState:
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
            state.notified = False
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


def enqueue(state: AlertState, alert: Alert, at: float) -> None:
    """Put a decision in the outbox; a firing that resolves before anyone was told sends nothing at all."""
    if alert.silenced or not alert.receivers:
        return
    if alert.status == RESOLVED and not state.notified:
        state.outbox, state.outbox_since = [], None
        return
    state.outbox.append(alert.to_dict())
    if state.outbox_since is None:
        state.outbox_since = at


def due(states: list[AlertState], at: float, group_wait: float, flush_all: bool = False) -> bool:
    """Time to notify: some decision has waited the group wait (or the stream ended)."""
    waiting = [s.outbox_since for s in states if s.outbox and s.outbox_since is not None]
    return bool(waiting) and (flush_all or at - min(waiting) >= group_wait)


def take(state: AlertState) -> list[Alert]:
    """Empty the outbox (the caller writes the state before handing the alerts on)."""
    alerts = [Alert.from_dict(a) for a in state.outbox]
    state.notified = state.notified or any(a.status == FIRING for a in alerts)
    state.outbox, state.outbox_since = [], None
    return alerts


def notifications(alerts: list[Alert], at: float) -> list[Notification]:
    """One notification per receiver with every alert routed to it, in decision order."""
    by_receiver: dict[str, list[Alert]] = {}
    for alert in sorted(alerts, key=lambda a: (a.at, a.rule, a.fingerprint)):
        for receiver in alert.receivers:
            by_receiver.setdefault(receiver, []).append(alert)
    return [Notification(receiver=r, alerts=a, created_at=at) for r, a in sorted(by_receiver.items())]
