"""A synthetic tenant for measuring detection: people, devices, apps and a Token Protection rollout, day by day.

Written from what a tenant looks like, not from what the rules need (`make eval-detect` measures the shipped
rules on it; docs/rules.md has the figures):

- users sign in during office hours (UTC), about 8 times more in the day than at night, far less at weekends,
  each at their own pace (log-normal), to the handful of apps they use (popularity falls off like Zipf's law);
- one sign-in in ten is a browser's (always unbound: Token Protection covers native apps only) and one in eight
  is not evaluated at all (no Token Protection policy applies);
- a quarter of the users are in the enforced pilot, six in ten in report-only, the rest out of scope; on the
  third day at 09:00 another quarter moves from report-only to enforced;
- each app has its own share of people whose device or client is unsupported (from 0.3 % to 12 %, more on macOS
  and iOS), whose sign-ins to it are always unbound, with the status code of their cause; blocked clients
  retry; now and then one broken device retries ten times in a few minutes; a healthy sign-in is unbound by
  chance one time in 300 (code 1005);
- on the first day a new line-of-business app rolls out during the morning, with a high share of unbound users.

The biggest tenant sends one healthy (not unbound) sign-in in `thin`, and every unbound one: see `Tenant.thin`.
Records carry only the fields bindwatch reads, so millions can be generated and judged in minutes.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import orjson

DAY = 86400.0
NEW_APP_REACH = 0.3  # the share of users the new app reaches by noon of its first day
BROWSER_SHARE = 0.10
UNEVALUATED_SHARE = 0.12
CHANCE_UNBOUND = 1 / 300
SIGNINS_PER_DAY = 20.0  # an active user's native and browser sign-ins on a weekday, on average
WEEKEND_ACTIVE = 0.2  # the share of users who sign in at all at weekends
RETRY_STORMS_PER_1K_USERS = 6.0  # a day: one broken device retrying 4-12 times within a few minutes

# Hour-of-day activity (UTC), weekday and weekend: night is an eighth of the day.
WEEKDAY = [0.12, 0.12, 0.12, 0.12, 0.12, 0.15, 0.25, 0.55, 0.9, 1.0, 1.0, 1.0]
WEEKDAY += [0.8, 1.0, 1.0, 1.0, 0.9, 0.6, 0.4, 0.3, 0.22, 0.2, 0.15, 0.13]
WEEKEND = [0.1] * 7 + [0.14, 0.2, 0.25, 0.28, 0.3, 0.3, 0.3, 0.28, 0.26, 0.22, 0.2, 0.18, 0.16, 0.14, 0.12, 0.1, 0.1]

PLATFORMS = (("Windows10", 0.64), ("MacOs", 0.10), ("Ios", 0.15), ("Android", 0.11))
PLATFORM_RISK = {"Windows10": 1.0, "MacOs": 2.5, "Ios": 1.8, "Android": 1.2}  # unsupported setups by platform
CAUSES = {"Windows10": (1008, 1003, 1002), "MacOs": (1004, 1003), "Ios": (1006, 1003), "Android": (1002, 1005)}
CORE_APPS = (
    ("Microsoft Outlook", 0.85, "Office 365 Exchange Online"),
    ("Microsoft Teams", 0.9, "Microsoft Teams Services"),
    ("Windows Sign In", 0.7, "Windows Azure Active Directory"),
    ("OneDrive SyncEngine", 0.65, "Office 365 SharePoint Online"),
    ("Microsoft Office", 0.55, "Office 365 SharePoint Online"),
    ("Microsoft Edge", 0.45, "Microsoft Graph"),
    ("Microsoft Authenticator App", 0.3, "Microsoft Graph"),
    ("OneNote", 0.25, "Office 365 SharePoint Online"),
    ("Microsoft Intune Company Portal", 0.2, "Microsoft Intune"),
    ("Microsoft Power BI", 0.15, "Power BI Service"),
    ("Zoom", 0.15, "Zoom"),
    ("Adobe Acrobat", 0.12, "Adobe Document Cloud"),
    ("Visual Studio Code", 0.06, "Microsoft Graph"),
    ("Azure CLI", 0.03, "Windows Azure Service Management API"),
)
ENFORCED, REPORT_ONLY, OUT_OF_SCOPE = "enforced", "report_only", "none"
NEW_APP = "Contoso Expenses"


_MASK = 2**64 - 1


def _unit(*parts: int) -> float:
    """A stable pseudo-random number in [0, 1) for these integers (splitmix64: the same in every process)."""
    state = 0x9E3779B97F4A7C15
    for part in parts:
        state = (state ^ (part & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        state = (state ^ (state >> 31)) * 0x94D049BB133111EB & _MASK
        state ^= state >> 29
    return state / 2**64


BROKEN, CAUSE, REACH, WEEKEND_DAY = 1, 2, 3, 4  # what a stable number is drawn for


@dataclass(frozen=True, slots=True)
class App:
    name: str
    popularity: float  # the share of users who use it
    resource: str
    unsupported: float  # the share of its users whose setup it cannot bind on (before the platform's risk)
    unevaluated: float = UNEVALUATED_SHARE  # the share of its sign-ins no Token Protection policy evaluates
    index: int = 0


@dataclass(slots=True)
class User:
    index: int
    upn: str
    platform: str
    trust: str
    pace: float  # sign-ins a day relative to the average user
    pilot: str  # enforced pilot, report-only, out of scope (before the switch)
    department: bool  # moves to enforced at the switch
    apps: tuple[App, ...]


@dataclass(slots=True)
class Attempt:
    """One sign-in as the generator decides it: who, what, when, and whether it is bound."""

    at: float
    user: User
    app: App
    status: str  # bound | unbound | none (not evaluated)
    code: int | None
    mode: str  # enforced | report_only | none
    browser: bool = False
    requests: int = 1


@dataclass
class Tenant:
    """A tenant of `users` people from `start` (a Friday 00:00 UTC by default) for `days` days."""

    users: int
    seed: int = 12
    start: float = datetime(2026, 3, 13, tzinfo=UTC).timestamp()  # a Friday
    days: int = 4
    thin: int = 1  # send one healthy sign-in in `thin` (every unbound one): the biggest tenant's sampling
    people: list[User] = field(init=False)
    apps: list[App] = field(init=False)
    switch_at: float = field(init=False)  # the department moves from report-only to enforced
    new_app_at: float = field(init=False)

    def __post_init__(self) -> None:
        rng = random.Random(f"tenant-{self.users}-{self.seed}")
        self.apps = self._apps(rng)
        self.people = [self._person(i, rng) for i in range(self.users)]
        self.switch_at = self.start + 3 * DAY + 9 * 3600
        self.new_app_at = self.start + 9.5 * 3600
        self._weights = list(_cumulative([p.pace for p in self.people]))
        self._weekend: dict[int, tuple[list[User], list[float]]] = {}
        self._broken: dict[tuple[int, int], int | None] = {}
        self._reaches: dict[int, float] = {}

    def _weekend_people(self, day: int) -> tuple[list[User], list[float]]:
        """Who signs in at all on a weekend day (a fifth of the users), with their cumulative paces."""
        if day not in self._weekend:
            people = [u for u in self.people if _unit(self.seed, WEEKEND_DAY, u.index, day) < WEEKEND_ACTIVE]
            self._weekend = {day: (people, list(_cumulative([p.pace for p in people])))}
        return self._weekend[day]

    def _apps(self, rng: random.Random) -> list[App]:
        extra = {1_000: 2, 10_000: 20, 100_000: 70}.get(self.users, max(2, round(math.log10(self.users) * 8)))
        apps = [App(n, p, r, _unsupported(rng), rng.uniform(0, 2 * UNEVALUATED_SHARE)) for n, p, r in CORE_APPS]
        for index in range(extra):  # line-of-business and niche apps, ever fewer users each
            name, resource = f"Contoso App {index + 1:02d}", f"Contoso API {index + 1:02d}"
            popularity = 0.12 / (1 + index) ** 0.8
            apps.append(App(name, popularity, resource, _unsupported(rng), rng.uniform(0, 2 * UNEVALUATED_SHARE)))
        apps.append(App(NEW_APP, NEW_APP_REACH, "Contoso Expenses API", 0.08))
        return [replace(app, index=index) for index, app in enumerate(apps)]

    def _person(self, index: int, rng: random.Random) -> User:
        platform = _pick(rng, PLATFORMS)
        trust = "Azure AD joined" if platform == "Windows10" else "Azure AD registered"
        roll = rng.random()
        pilot = ENFORCED if roll < 0.25 else REPORT_ONLY if roll < 0.85 else OUT_OF_SCOPE
        department = pilot == REPORT_ONLY and rng.random() < 0.25 / 0.6
        apps = tuple(app for app in self.apps if app.name != NEW_APP and rng.random() < app.popularity)
        pace = rng.lognormvariate(0, 0.6)
        return User(index, f"user{index:06d}@contoso.example", platform, trust, pace, pilot, department, apps)

    # --- who is unbound, and why ---

    def mode(self, user: User, at: float) -> str:
        if user.department and at >= self.switch_at:
            return ENFORCED
        return user.pilot

    def broken(self, user: User, app: App) -> int | None:
        """The status code this user's sign-ins to this app are unbound with, or None when their setup is fine."""
        key = (user.index, app.index)
        if key not in self._broken:
            self._broken[key] = self._cause(user, app)
        return self._broken[key]

    def _cause(self, user: User, app: App) -> int | None:
        risk = min(0.9, app.unsupported * PLATFORM_RISK[user.platform])
        if _unit(self.seed, BROKEN, user.index, app.index) >= risk:
            return None
        causes = CAUSES[user.platform]
        return causes[int(_unit(self.seed, CAUSE, user.index, app.index) * len(causes))]

    def uses(self, user: User, at: float) -> tuple[App, ...]:
        if at >= self.new_app_at:  # the new app reaches its users over the morning
            share = min(1.0, (at - self.new_app_at) / (3 * 3600))
            if self._reach(user) < NEW_APP_REACH * share:
                return (*user.apps, self.apps[-1])
        return user.apps

    def _reach(self, user: User) -> float:
        found = self._reaches.get(user.index)
        if found is None:
            found = self._reaches[user.index] = _unit(self.seed, REACH, user.index)
        return found

    # --- traffic ---

    def rate(self, at: float) -> float:
        """Sign-ins a minute across the tenant at `at` (before thinning)."""
        moment = datetime.fromtimestamp(at, UTC)
        profile = WEEKEND if moment.weekday() >= 5 else WEEKDAY
        hour = moment.hour + moment.minute / 60
        low, high = profile[int(hour) % 24], profile[(int(hour) + 1) % 24]
        level = low + (high - low) * (hour - int(hour))
        per_day = SIGNINS_PER_DAY * self.users / (sum(WEEKDAY) / 24 * 24 * 60)
        return per_day * level

    def minute(self, at: float) -> list[Attempt]:
        """The sign-ins starting in the minute from `at` (deterministic for the tenant and the minute)."""
        rng = random.Random(f"{self.seed}-{self.users}-{int(at)}")
        people, weights = self.people, self._weights
        if datetime.fromtimestamp(at, UTC).weekday() >= 5:
            people, weights = self._weekend_people(int(at // DAY))
        found = []
        for _ in range(poisson(rng, self.rate(at)) if people else 0):
            user = people[bisect.bisect(weights, rng.random() * weights[-1])]
            apps = self.uses(user, at)
            if not apps:
                continue
            app = rng.choice(apps)
            if self.thin > 1 and self.broken(user, app) is None and rng.random() * self.thin >= 1:
                continue  # thinned before the work: a healthy sign-in that would not be sent
            found += self.signins(user, app, at + rng.random() * 60, rng)
        found += self._retry_storms(at, rng)
        return [s for s in found if self.kept(s, rng)]

    def kept(self, attempt: Attempt, rng: random.Random) -> bool:
        """Thinning: every unbound native sign-in of a broken setup is sent; one other sign-in in `thin` (those
        of healthy setups were thinned before they were made)."""
        if self.thin <= 1 or self.broken(attempt.user, attempt.app) is None:
            return True
        return (attempt.status == "unbound" and not attempt.browser) or rng.random() * self.thin < 1

    def signins(self, user: User, app: App, at: float, rng: random.Random) -> list[Attempt]:
        """One sign-in (a blocked client retries once or twice)."""
        if rng.random() < BROWSER_SHARE:
            return [Attempt(at, user, app, "unbound", 1002, self.mode(user, at), browser=True)]
        mode = self.mode(user, at)
        if mode == OUT_OF_SCOPE or rng.random() < app.unevaluated:
            return [Attempt(at, user, app, "none", None, mode)]
        code = self.broken(user, app)
        if code is None and rng.random() < CHANCE_UNBOUND:
            code = 1005
        if code is None:
            return [Attempt(at, user, app, "bound", None, mode, requests=rng.randint(1, 3))]
        tries = 1 + (rng.randint(0, 2) if mode == ENFORCED else 0)
        return [Attempt(at + 20 * i, user, app, "unbound", code, mode) for i in range(tries)]

    def _retry_storms(self, at: float, rng: random.Random) -> list[Attempt]:
        chance = RETRY_STORMS_PER_1K_USERS * self.users / 1000 / (24 * 60) * (self.rate(at) / self._mean_rate())
        if rng.random() >= chance:
            return []
        for _ in range(50):
            user = rng.choice(self.people)
            for app in user.apps:
                code = self.broken(user, app)
                if code is not None and self.mode(user, at) != OUT_OF_SCOPE:
                    mode = self.mode(user, at)
                    times = [at + i * rng.uniform(5, 30) for i in range(rng.randint(4, 12))]
                    return [Attempt(t, user, app, "unbound", code, mode) for t in times]
        return []

    def _mean_rate(self) -> float:
        return SIGNINS_PER_DAY * self.users / (24 * 60)

    def stream(self, start: float, end: float) -> Iterator[tuple[float, list[Attempt]]]:
        """Minute by minute from `start` to `end`: (minute, its sign-ins)."""
        at = start - start % 60
        while at < end:
            yield at, self.minute(at)
            at += 60


def _unsupported(rng: random.Random) -> float:
    """An app's share of users it cannot bind for: log-uniform from 0.3 % to 12 %."""
    return math.exp(rng.uniform(math.log(0.003), math.log(0.12)))


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    roll = rng.random()
    for value, weight in weighted:
        roll -= weight
        if roll < 0:
            return value
    return weighted[-1][0]


def _cumulative(values: list[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; a normal approximation above a mean of 50)."""
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


# --- records as the Event Hub stream carries them (only the fields bindwatch reads) ---

TP_POLICY = "CA-TP01 Require token protection"


def records(signin: Attempt, serial: int) -> list[dict[str, object]]:
    """The requests of one sign-in as records (a bound sign-in may have several)."""
    correlation = f"{signin.user.index:06x}-{serial:010x}"
    out = []
    for index in range(signin.requests):
        at = signin.at + index * 2
        properties: dict[str, object] = {
            "id": f"{correlation}-{index}",
            "correlationId": correlation,
            "createdDateTime": _iso(at),
            "userPrincipalName": signin.user.upn,
            "appDisplayName": signin.app.name,
            "resourceDisplayName": signin.app.resource,
            "clientAppUsed": "Browser" if signin.browser else "Mobile Apps and Desktop clients",
            "deviceDetail": {"operatingSystem": signin.user.platform, "trustType": signin.user.trust},
        }
        if signin.status != "none":
            details: dict[str, object] = {"signInSessionStatus": signin.status}
            if signin.code is not None:
                details["signInSessionStatusCode"] = signin.code
            properties["tokenProtectionStatusDetails"] = details
            if signin.mode != OUT_OF_SCOPE:
                properties["appliedConditionalAccessPolicies"] = [_policy(signin)]
        out.append({"category": "NonInteractiveUserSignInLogs", "time": _iso(at + 120), "properties": properties})
    return out


def _policy(signin: Attempt) -> dict[str, object]:
    unbound = signin.status == "unbound"
    if signin.mode == ENFORCED:
        result = "failure" if unbound else "success"
    else:
        result = "reportOnlyFailure" if unbound else "reportOnlySuccess"
    return {
        "displayName": TP_POLICY,
        "enforcedSessionControls": ["SignInTokenProtection"],
        "sessionControlsNotSatisfied": ["SignInTokenProtection"] if unbound else [],
        "result": result,
    }


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def body(items: list[dict[str, object]]) -> bytes:
    return orjson.dumps({"records": items})
