"""An alert and a notification: the contract between detection (rules, lifecycle) and delivery.

Detection decides; delivery carries. Both sides agree only on these plain data
shapes, so destinations can be tested with hand-made alerts and the lifecycle
without any destination.

The lifecycle lives here too, pure and given the event time: an alert fires,
repeats at its repeat interval while its condition lasts, and resolves once the
condition has been false for `resolve_after`. Decisions wait in the alert's
outbox for the group wait, so alerts that fire together for one destination go
out as one notification.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .request import iso

Status = Literal["firing", "resolved"]
Severity = Literal["critical", "error", "warning", "info"]


@dataclass(slots=True)
class Alert:
    """One decision about one fingerprint (rule + group values), at an event time."""

    fingerprint: str
    rule: str
    status: Status
    at: float  # event time at which it was decided (seconds since the epoch)
    title: str = ""
    severity: Severity = "warning"
    enforcement: str = "any"  # "report_only" (would be blocked), "enforced" (was blocked) or "any"
    group: dict[str, str] = field(default_factory=dict)
    starts_at: float = 0.0  # event time the alert first fired
    summary: str = ""  # what fired and why, one or two sentences, counts against the baseline
    kind: str = ""  # threshold | spike | ratio | new
    current: float = 0.0  # the measured value in the window (count or share)
    baseline: float | None = None
    window_seconds: float = 0.0
    signins: int = 0  # judged sign-ins in the window (for shares)
    unbound: int = 0  # unbound sign-ins in the window
    top: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # apps, resources, users, platforms, codes
    codes: list[dict[str, Any]] = field(default_factory=list)  # {code, meaning, fix}
    examples: list[str] = field(default_factory=list)  # correlation IDs
    kql: str = ""  # a Log Analytics query that shows the same sign-ins
    links: dict[str, str] = field(default_factory=dict)  # title -> URL (Entra sign-in logs, lookup)
    receivers: list[str] = field(default_factory=list)  # destination names the rules file routes it to
    silenced: bool = False  # a silence matched: decided and logged, but not notified

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["top"] = {k: [list(item) for item in v] for k, v in self.top.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        values = {k: v for k, v in data.items() if k in _ALERT_FIELDS}
        values["top"] = {k: [(str(n), int(c)) for n, c in v] for k, v in values.get("top", {}).items()}
        return cls(**values)

    def line(self) -> dict[str, Any]:
        """The replay/log line: `type`, `status`, `rule`, `fingerprint`, `at` (ISO 8601 event time), `group`, ..."""
        data = self.to_dict()
        data["at"] = iso(self.at)
        data["starts_at"] = iso(self.starts_at) if self.starts_at else None
        head = {"type": "alert", "status": self.status, "rule": self.rule, "fingerprint": self.fingerprint}
        return {**head, "at": data.pop("at"), "group": data.pop("group"), **data}


_ALERT_FIELDS = frozenset(Alert.__dataclass_fields__)


def fingerprint(rule: str, group: dict[str, str]) -> str:
    """Stable for a rule and its group values, across instances, restarts and releases."""
    text = rule + "\x1f" + "\x1f".join(f"{k}={v}" for k, v in sorted(group.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(slots=True)
class Notification:
    """The alerts that go to one destination together (group wait), sent and retried as one unit."""

    receiver: str
    alerts: list[Alert]
    created_at: float  # event time the group was flushed

    @property
    def id(self) -> str:
        """Stable across retries and instances: receivers dedupe by it (Standard Webhooks' webhook-id).

        Made from the decisions only (not from when the group was flushed), so two instances or two
        passes that hand over the same decisions make one outbox entry, not two.
        """
        parts = [self.receiver]
        parts += sorted(f"{a.fingerprint}:{a.status}:{a.at:.3f}" for a in self.alerts)
        return "msg_" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        return {"receiver": self.receiver, "created_at": self.created_at, "alerts": [a.to_dict() for a in self.alerts]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Notification:
        return cls(
            receiver=data["receiver"],
            created_at=float(data["created_at"]),
            alerts=[Alert.from_dict(a) for a in data["alerts"]],
        )


# --- lifecycle (pure; the time is always an argument) ---

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
