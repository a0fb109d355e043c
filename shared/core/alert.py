"""An alert and a notification: the contract between detection (`shared.detect`) and delivery (`shared.notify`).

Detection decides; delivery carries. Both sides agree only on these plain data
shapes, so destinations can be tested with hand-made alerts and the lifecycle
without any destination.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .timestamp import iso

Status = Literal["firing", "resolved"]
Severity = Literal["critical", "error", "warning", "info"]
Unit = Literal["count", "share"]


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
    unit: Unit = "count"  # what `current` and `baseline` measure: a count of sign-ins, or a share of them
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
