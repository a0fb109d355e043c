"""An alert and a notification: the contract between detection (rules, lifecycle) and delivery.

Detection decides; delivery carries. Both sides agree only on these plain data
shapes, so destinations can be tested with hand-made alerts and the lifecycle
without any destination.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["top"] = {k: [list(item) for item in v] for k, v in self.top.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        values = dict(data)
        values["top"] = {k: [(str(n), int(c)) for n, c in v] for k, v in values.get("top", {}).items()}
        return cls(**values)


@dataclass(slots=True)
class Notification:
    """The alerts that go to one destination together (group wait), sent and retried as one unit."""

    receiver: str
    alerts: list[Alert]
    created_at: float  # event time the group was flushed

    @property
    def id(self) -> str:
        """Stable across retries and instances: receivers dedupe by it (Standard Webhooks' webhook-id)."""
        parts = [self.receiver, f"{self.created_at:.3f}"]
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
