"""Incidents: the alerts about one cause, told to each destination once, then again only when they end.

Pure, given the event time. An alert that starts firing joins the open incident it
correlates with (it shares an app, a platform or a status code with one of its
alerts: its own group value, or the value most of its unbound sign-ins have, see
`[incidents]` in the rules file), or opens a new one. Each destination is told of
an incident:

- `opened`: once, when the group wait of its first alert routed there has passed,
  with every alert it holds so far (a card headed by the highest severity);
- `escalated`: when an alert of a higher severity than it was told of joins (a
  critical must never hide in an old warning card; warnings wait longer before an
  incident is first told, so that this is rare);
- `repeated`: every repeat interval while it lasts;
- `resolved`: once, when every alert in it has resolved.

Everything else (more alerts of the same or a lower severity, their repeats) is
kept in the incident and shows in its next notification, not as a new page. In
the manner of Alertmanager's groups (`group_wait`, `repeat_interval`,
`send_resolved`), with PagerDuty's `dedup_key` being the incident's id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from shared.core.alert import SEVERITY_RANK, Alert, Notification, highest_severity

from .grouping import NONE_VALUE
from .window import Counts

OPEN = "open"
RESOLVED = "resolved"
MAX_MEMBERS = 200  # alerts an incident lists at all; more are counted in `more`


@dataclass(slots=True)
class Member:
    """One alert in an incident: what routes and ranks it, and its latest decision (for the notifications)."""

    fingerprint: str
    rule: str
    severity: str
    status: str  # firing | resolved
    receivers: list[str]
    due_at: float  # its group wait ends then
    scope: list[list[str]]  # [dimension, value] pairs it correlates on
    alert: dict[str, Any] | None = None  # None beyond the incident's `max_alerts`: listed, not shown
    own: list[list[str]] = field(default_factory=list)  # the pairs of its own group: what it is about


@dataclass(slots=True)
class Told:
    """What one destination has been told of an incident."""

    severity: str
    at: float
    count: int = 1
    resolved: bool = False


@dataclass(slots=True)
class IncidentState:
    id: str
    opened_at: float
    status: str = OPEN
    members: dict[str, Member] = field(default_factory=dict)
    told: dict[str, Told] = field(default_factory=dict)
    resolved_at: float | None = None
    more: int = 0  # alerts that joined beyond MAX_MEMBERS
    etag: str | None = None

    @property
    def live(self) -> bool:
        """Needs loading: open, or resolved with a destination that has not been told yet."""
        return self.status == OPEN or any(not t.resolved for t in self.told.values())

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("etag")
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any], etag: str | None = None) -> IncidentState:
        return cls(
            id=str(data["id"]),
            opened_at=float(data["opened_at"]),
            status=str(data.get("status", OPEN)),
            members={k: Member(**v) for k, v in dict(data.get("members") or {}).items()},
            told={k: Told(**v) for k, v in dict(data.get("told") or {}).items()},
            resolved_at=data.get("resolved_at"),
            more=int(data.get("more", 0)),
            etag=etag,
        )

    def copy(self) -> IncidentState:
        return IncidentState.from_data(self.to_data(), self.etag)

    def scope(self) -> set[tuple[str, str]]:
        return {(d, v) for m in self.members.values() for d, v in m.scope}

    def about(self) -> set[tuple[str, str]]:
        """What its alerts are about (their own group values): an app, a platform, a code."""
        return {(d, v) for m in self.members.values() for d, v in m.own}

    def apply(self, operation: tuple[Any, ...], max_alerts: int = 30) -> bool:
        """Apply one recorded update (`join`, `update`, `told`); True when it changed anything."""
        name = operation[0]
        if name == "join":
            return join(self, operation[1], max_alerts)
        if name == "update":
            return update(self, *operation[1:])
        if name == "told":
            return told(self, *operation[1:])
        raise ValueError(f"unknown incident operation {name!r}")


def incident_id(fingerprint: str, at: float) -> str:
    """Stable for the alert that opened it and when: PagerDuty's dedup_key, the alert line's `incident`."""
    return "inc-" + hashlib.sha256(f"{fingerprint}\x1f{at:.3f}".encode()).hexdigest()[:20]


def scope_of(group: Mapping[str, str], counts: Counts, dimensions: Sequence[str], share: float) -> list[list[str]]:
    """What an alert correlates on: per dimension, its group's value, else the value at least `share` of its
    unbound sign-ins have (an app alert whose sign-ins are nearly all iOS correlates with an iOS alert)."""
    found = []
    for dimension in dimensions:
        value = group.get(dimension)
        if value is None:
            top = counts.top(dimension, 1)
            if top and counts.unbound and top[0][1] >= share * counts.unbound:
                value = top[0][0]
        if value and value != NONE_VALUE:
            found.append([dimension, value])
    return found


def leaning_of(group: Mapping[str, str], counts: Counts, dimensions: Sequence[str], share: float) -> list[list[str]]:
    """The values an alert leans towards without being dominated by: per dimension not in its group, the most
    frequent value when it has at least `share` of its unbound sign-ins (an Outlook alert in a macOS incident
    whose usual unbound sign-ins are many and Windows still leans to macOS)."""
    found = []
    for dimension in dimensions:
        if dimension in group:
            continue
        top = counts.top(dimension, 1)
        if top and counts.unbound and top[0][1] >= share * counts.unbound and top[0][0] != NONE_VALUE:
            found.append([dimension, top[0][0]])
    return found


def find(
    incidents: Iterable[IncidentState],
    scope: Iterable[Sequence[str]],
    at: float,
    leaning: Iterable[Sequence[str]] = (),
) -> IncidentState | None:
    """The earliest incident that an alert joins: open (or just resolved and not yet told so, which it reopens),
    sharing a correlated value with it, or leaning towards what one of its alerts is about."""
    wanted = {(d, v) for d, v in scope}
    leans = {(d, v) for d, v in leaning}
    candidates = [
        i
        for i in incidents
        if (i.status == OPEN or not any(t.resolved for t in i.told.values()))
        and (wanted & i.scope() or leans & i.about())
    ]
    return min(candidates, key=lambda i: (i.opened_at, i.id), default=None)


def join(incident: IncidentState, member: Mapping[str, Any], max_alerts: int = 30) -> bool:
    """Add (or refresh) an alert that started firing; a resolved incident not told so yet opens again."""
    fingerprint = member["fingerprint"]
    known = incident.members.get(fingerprint)
    if known is not None and known.status == "firing" and known.due_at == member["due_at"]:
        return False
    if known is None and len(incident.members) >= MAX_MEMBERS:
        incident.more += 1
        return True
    entry = Member(**member)
    shown = sum(1 for m in incident.members.values() if m.alert is not None and m.fingerprint != fingerprint)
    if shown >= max_alerts:
        entry.alert = None
    incident.members[fingerprint] = entry
    if incident.status == RESOLVED:
        incident.status, incident.resolved_at = OPEN, None
    return True


def update(incident: IncidentState, fingerprint: str, status: str, alert: dict[str, Any], at: float) -> bool:
    """A member's new decision (a repeat or its resolve); the incident resolves with its last alert."""
    member = incident.members.get(fingerprint)
    if member is None or (member.status == status and member.alert == alert):
        return False
    member.status = status
    if status == "firing":  # a combined alert escalates: its severity, and so maybe its receivers, rise
        member.severity = str(alert.get("severity", member.severity))
        member.receivers = sorted({*member.receivers, *alert.get("receivers", [])})
        member.due_at = max(member.due_at, at)
    if member.alert is not None:
        member.alert = alert
    if incident.status == OPEN and all(m.status == "resolved" for m in incident.members.values()):
        incident.status, incident.resolved_at = RESOLVED, at
    return True


def told(incident: IncidentState, receiver: str, reason: str, severity: str, at: float) -> bool:
    """Record that a destination was handed a notification (before the write that records it, the outbox has it)."""
    known = incident.told.get(receiver)
    if reason == "resolved":
        if known is None or known.resolved:
            return False
        known.resolved = True
        return True
    if known is None:
        incident.told[receiver] = Told(severity, at)
        return True
    if known.at >= at and SEVERITY_RANK.get(known.severity, 0) >= SEVERITY_RANK.get(severity, 0):
        return False
    known.severity = highest_severity((known.severity, severity))
    known.at, known.count = at, known.count + 1
    return True


@dataclass(frozen=True, slots=True)
class Plan:
    """One notification to make: to whom, why, and the alerts it shows."""

    receiver: str
    reason: str  # opened | escalated | repeated | resolved
    severity: str  # the highest severity of its firing alerts (of all, when resolved)
    members: tuple[Member, ...]


def plan(
    incident: IncidentState, at: float, repeat_interval: float, resolve_wait: float, flush_all: bool = False
) -> list[Plan]:
    """What each destination must be told now (nothing, mostly)."""
    plans = []
    for receiver in sorted({r for m in incident.members.values() for r in m.receivers}):
        routed = tuple(m for m in incident.members.values() if receiver in m.receivers)
        known = incident.told.get(receiver)
        if incident.status == RESOLVED:
            waited = incident.resolved_at is not None and at - incident.resolved_at >= resolve_wait
            if known is not None and not known.resolved and (flush_all or waited):
                plans.append(Plan(receiver, "resolved", _highest(routed), routed))
            continue
        firing = [m for m in routed if m.status == "firing"]
        due = [m for m in firing if flush_all or m.due_at <= at]
        if not due:
            continue
        severity = _highest(firing)  # what the notification holds, due or not yet
        if known is None:
            reason = "opened"
        elif SEVERITY_RANK.get(_highest(due), 0) > SEVERITY_RANK.get(known.severity, 0):
            reason = "escalated"
        elif at - known.at >= repeat_interval:
            reason = "repeated"
        else:
            continue
        plans.append(Plan(receiver, reason, severity, routed))
    return plans


def _highest(members: Iterable[Member]) -> str:
    return highest_severity(m.severity for m in members)


def notification(incident: IncidentState, made: Plan, at: float) -> Notification:
    """The notification for one plan: its alerts firing first and most severe first, so the card's header (its
    first alert) is the highest severity it holds."""
    alerts = [Alert.from_dict(m.alert) for m in made.members if m.alert is not None]
    if not alerts:  # every alert routed here is beyond max_alerts: name them at least
        alerts = [Alert(m.fingerprint, m.rule, m.status, at, severity=m.severity) for m in made.members]  # type: ignore[arg-type]
    if made.reason == "resolved":
        for alert in alerts:
            alert.status = "resolved"
    alerts.sort(key=lambda a: (a.status != "firing", -SEVERITY_RANK.get(a.severity, 0), a.at, a.fingerprint))
    known = incident.told.get(made.receiver)
    sequence = (known.count if known else 0) + (made.reason == "resolved")
    omitted = sum(1 for m in made.members if m.alert is None) + incident.more
    return Notification(
        receiver=made.receiver,
        alerts=alerts,
        created_at=at,
        incident=incident.id,
        reason=made.reason,
        severity=made.severity,
        opened_at=incident.opened_at,
        omitted=omitted,
        sequence=sequence,
    )
