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
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2, "critical": 3}


def highest_severity(severities: Any) -> Severity:
    """The most severe of `severities` ("info" when there are none)."""
    return max(severities, key=lambda s: SEVERITY_RANK.get(s, 0), default="info")


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
    silenced: bool = False  # a silence or an inhibit rule matched: decided and logged, but not notified
    incident: str = ""  # the incident it belongs to (its notifications' and PagerDuty's key); "" when not notified
    # The token protection policy change it most likely follows ("began 4 min after 'CA-TP01' was switched On by
    # admin@contoso.com"), and what would undo the harm (the guardrail's pages): "" and [] when there is none.
    change: str = ""
    way_back: list[str] = field(default_factory=list)

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


Reason = Literal["", "opened", "escalated", "repeated", "resolved"]


@dataclass(slots=True)
class Notification:
    """What one destination is told of one incident at one time, sent and retried as one unit.

    `reason` says why: the incident `opened`, `escalated` (an alert of a higher severity joined), is `repeated`
    while it lasts, or `resolved`. `severity` is the highest severity of its firing alerts, which come first.
    """

    receiver: str
    alerts: list[Alert]
    created_at: float  # event time the notification was made
    incident: str = ""  # "" for notifications made before incidents existed (an outbox may still hold some)
    reason: Reason = ""
    severity: Severity = "info"
    opened_at: float = 0.0  # event time the incident opened
    omitted: int = 0  # alerts of the incident not shown (beyond the incident's max_alerts)
    sequence: int = 0  # how many notifications of this incident the destination had before this one

    @property
    def id(self) -> str:
        """Stable across retries and instances: receivers dedupe by it (Standard Webhooks' webhook-id).

        Made from what is told (the incident, why, and the how-manieth time), not from when it was flushed, so
        two instances or two passes that hand over the same notification make one outbox entry, not two.
        """
        if self.incident:
            parts = [self.receiver, self.incident, self.reason, str(self.sequence)]
        else:
            parts = [self.receiver]
            parts += sorted(f"{a.fingerprint}:{a.status}:{a.at:.3f}" for a in self.alerts)
        return "msg_" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    @property
    def status(self) -> Status:
        return "resolved" if self.reason == "resolved" else "firing"

    def to_dict(self) -> dict[str, Any]:
        return {
            "receiver": self.receiver,
            "created_at": self.created_at,
            "alerts": [a.to_dict() for a in self.alerts],
            "incident": self.incident,
            "reason": self.reason,
            "severity": self.severity,
            "opened_at": self.opened_at,
            "omitted": self.omitted,
            "sequence": self.sequence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Notification:
        alerts = [Alert.from_dict(a) for a in data["alerts"]]
        return cls(
            receiver=data["receiver"],
            created_at=float(data["created_at"]),
            alerts=alerts,
            incident=str(data.get("incident", "")),
            reason=data.get("reason", _reason_before_incidents(alerts)),
            severity=data.get("severity", _severity_before_incidents(alerts)),
            opened_at=float(data.get("opened_at", 0.0)),
            omitted=int(data.get("omitted", 0)),
            sequence=int(data.get("sequence", 0)),
        )


def _reason_before_incidents(alerts: list[Alert]) -> Reason:
    """A notification stored before incidents existed told of resolved alerts only when all of them were."""
    return "resolved" if alerts and all(a.status == "resolved" for a in alerts) else ""


def _severity_before_incidents(alerts: list[Alert]) -> Severity:
    """Such a notification was headed by the highest severity it held (its firing alerts' when any fire)."""
    firing = [a.severity for a in alerts if a.status == "firing"]
    return highest_severity(firing or [a.severity for a in alerts])
