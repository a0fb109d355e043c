"""A token protection rollout as the stream carries it: a day in report-only, then two policies switched On.

For samples, tests and the guardrail's documentation. Two policies judge the pilot's sign-ins for a day in
report-only (a steady few percent would be blocked: unregistered devices, clients without the broker). Then
admin@contoso.com switches 'CA-TP01 Require token protection' On, and one app that report-only saw rarely fail
('Contoso Field App', newly rolled out to the pilot) fails most of its sign-ins: far beyond the prediction.
Ten minutes later secadmin@contoso.com switches 'CA-TP02 Token protection for finance' On, and it blocks what
report-only said it would. Each Event Hub body holds one minute of records; the audit records ride in the
minute they were made, as a diagnostic setting streaming both categories to one hub delivers them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import audit
from .records import BASE_TIME, body, policy, record, uid

TP01 = "CA-TP01 Require token protection"
TP02 = "CA-TP02 Token protection for finance"
BREAKING_APP = "Contoso Field App"
APPS = ("Microsoft Outlook", "Microsoft Teams", "OneDrive SyncEngine", BREAKING_APP)
CAUSES = ((1002, "Windows10", ""), (1008, "Windows10", "Azure AD joined"), (1003, "Windows10", "Azure AD registered"))


@dataclass(frozen=True)
class Rollout:
    """When things happen, in event time."""

    start: datetime = BASE_TIME
    report_only_hours: int = 24
    after_minutes: int = 90  # traffic after the first switch
    per_minute: int = 12  # sign-ins a minute per policy
    unbound_share: float = 0.05  # of the ordinary sign-ins, before and after the switch
    breaking_share: float = 0.9  # of the breaking app's sign-ins once enforced (report-only: the ordinary share)

    @property
    def switch(self) -> datetime:
        return self.start + timedelta(hours=self.report_only_hours)

    @property
    def second_switch(self) -> datetime:
        return self.switch + timedelta(minutes=10)


def bodies(plan: Rollout = Rollout(), seed: int = 17) -> list[bytes]:
    """The stream, one body a minute, the switches' audit records in their minute."""
    rng = random.Random(seed)
    minutes = plan.report_only_hours * 60 + plan.after_minutes
    found = []
    for minute in range(minutes):
        at = plan.start + timedelta(minutes=minute)
        records = _minute(plan, at, rng)
        found.append(body(records))
    return found


def switches(plan: Rollout = Rollout()) -> list[dict[str, Any]]:
    """The two audit records: CA-TP01 and CA-TP02 switched from report-only to On."""
    first = audit.policy(TP01)
    second = {**audit.policy(TP02), "id": "5f1c9d4e-0000-4000-8000-00000000a002"}
    return [
        audit.audit_record(first, audit.changed(first, state="enabled"), at=plan.switch, record_id="IPCGraph_tp01"),
        audit.audit_record(
            second,
            audit.changed(second, state="enabled"),
            at=plan.second_switch,
            actor={"user": {"id": "u-2", "userPrincipalName": "secadmin@contoso.com"}},
            record_id="IPCGraph_tp02",
        ),
    ]


def _minute(plan: Rollout, at: datetime, rng: random.Random) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = [r for r in switches(plan) if _same_minute(r["time"], at)]
    for name, switched in ((TP01, plan.switch), (TP02, plan.second_switch)):
        for _ in range(plan.per_minute):
            moment = at + timedelta(seconds=rng.uniform(0, 59))
            records += _signin(plan, name, moment, enforced=moment >= switched, rng=rng)
    return records


def _signin(plan: Rollout, name: str, at: datetime, enforced: bool, rng: random.Random) -> list[dict[str, Any]]:
    """One sign-in of 1-2 requests; unbound at the ordinary share, or the breaking app's once TP01 enforces."""
    app = rng.choice(APPS) if name == TP01 else rng.choice(APPS[:3])
    share = plan.breaking_share if enforced and app == BREAKING_APP else plan.unbound_share
    unbound = rng.random() < share
    code, os_name, trust = rng.choice(CAUSES) if unbound else (None, "Windows10", "Azure AD joined")
    if app == BREAKING_APP and unbound:
        code, trust = 1008, "Azure AD joined"
    prefix = "" if enforced else "reportOnly"
    result = prefix + ("Failure" if unbound else "Success")
    result = result[0].lower() + result[1:]
    blocked = ["SignInTokenProtection"] if unbound else []
    applied = [policy(name, result, not_satisfied=blocked)]
    user = f"user{rng.randrange(400):03d}@contoso.com"
    correlation = uid(rng)
    return [
        record(
            correlation_id=correlation,
            request_id=uid(rng),
            at=at + timedelta(seconds=part),
            status="unbound" if unbound and part == 0 else "bound",
            code=code if unbound and part == 0 else None,
            policies=applied,
            user=user,
            app=app,
            os=os_name,
            trust_type=trust,
        )
        for part in range(rng.choice((1, 2)))
    ]


def _same_minute(time: str, at: datetime) -> bool:
    return datetime.fromisoformat(time).replace(second=0, microsecond=0) == at.replace(second=0, microsecond=0)
