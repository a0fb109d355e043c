"""Incidents to lay over a synthetic tenant: what breaks, where, how fast, how high, and for how long.

An incident makes people's sign-ins unbound who were fine before: everyone using one app (a client update
that stops using the broker, code 1008), one platform (an OS update that breaks registration), or one status
code across the tenant (a wave of sign-ins from unregistered devices, 1002). Its height is a multiple of the
usual rate of people with unbound sign-ins in its scope at that hour (measured on the tenant itself), and
never less than `FLOOR` people a minute, so that every incident has at least 10 people in its first five
minutes. It starts at once (a burst) or grows linearly (a ramp), holds, and ends at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .tenant import OUT_OF_SCOPE, Attempt, Tenant, User, poisson

FLOOR = 2.5  # people a minute, at least


@dataclass(frozen=True, slots=True)
class Incident:
    name: str
    scope: str  # app | platform | code
    target: str  # the app's or the platform's name, or the code
    code: int
    height: float  # multiple of the usual rate of unbound people in scope
    start: float
    hold: float  # seconds at full height
    ramp: float = 0.0  # seconds from nothing to full height

    @property
    def end(self) -> float:
        return self.start + self.ramp + self.hold

    @property
    def shape(self) -> str:
        return "ramp" if self.ramp else "burst"

    def strength(self, at: float) -> float:
        """The share of full height at `at`."""
        if at < self.start or at >= self.end:
            return 0.0
        return min(1.0, (at - self.start) / self.ramp) if self.ramp else 1.0


@dataclass(slots=True)
class Overlay:
    """An incident over a tenant: the extra unbound sign-ins, minute by minute (deterministic)."""

    tenant: Tenant
    incident: Incident
    usual: float  # unbound people a minute in scope, as usual at that hour
    rate: float = 0.0  # extra people a minute at full height
    people: list[User] = field(default_factory=list)  # who it can hit

    def __post_init__(self) -> None:
        self.rate = max(self.incident.height * self.usual, FLOOR)
        self.people = [u for u in self.tenant.people if self.in_scope(u)]

    def in_scope(self, user: User) -> bool:
        incident = self.incident
        if incident.scope == "app":
            return any(app.name == incident.target for app in user.apps)
        if incident.scope == "platform":
            return user.platform == incident.target
        return True

    def minute(self, at: float) -> list[Attempt]:
        strength = self.incident.strength(at + 30)
        if not strength:
            return []
        rng = random.Random(f"incident-{self.incident.name}-{int(at)}")
        found: list[Attempt] = []
        for _ in range(poisson(rng, self.rate * strength)):
            found += self._person(at, rng)
        return found

    def _person(self, at: float, rng: random.Random) -> list[Attempt]:
        for _ in range(100 if self.people else 0):
            user = rng.choice(self.people)
            if self.tenant.mode(user, at) == OUT_OF_SCOPE:
                continue
            apps = [a for a in user.apps if self.incident.scope != "app" or a.name == self.incident.target]
            if not apps:
                continue
            app, mode = rng.choice(apps), self.tenant.mode(user, at)
            first = at + rng.random() * 60
            tries = rng.randint(1, 3)  # a blocked client tries again
            return [Attempt(first + 15 * i, user, app, "unbound", self.incident.code, mode) for i in range(tries)]
        return []


def usual_rate(tenant: Tenant, incident: Incident, minutes: int = 60) -> float:
    """Unbound people a minute in the incident's scope over the hour before it (native sign-ins, in scope)."""
    overlay = Overlay(tenant, incident, 0.0)
    people: set[int] = set()
    per_window = []
    for at, attempts in tenant.stream(incident.start - minutes * 60, incident.start):
        for attempt in attempts:
            native = attempt.status == "unbound" and not attempt.browser and attempt.mode != OUT_OF_SCOPE
            if native and overlay.in_scope(attempt.user) and _matches(incident, attempt):
                people.add(attempt.user.index)
        if (at // 60) % 5 == 4:  # distinct people per five minutes, as the rules count them
            per_window.append(len(people))
            people = set()
    return sum(per_window) / max(1, len(per_window)) / 5


def _matches(incident: Incident, attempt: Attempt) -> bool:
    if incident.scope == "app":
        return attempt.app.name == incident.target
    if incident.scope == "code":
        return attempt.code == incident.code
    return True
