"""`make eval-detect` (`python -m bench.eval_detect`): how well the shipped rules detect, measured.

Three synthetic tenants (1,000, 10,000 and 100,000 people; `shared/synth/tenant.py`) sign in for four days, a
Friday to a Monday: office hours and nights, a weekend, apps with their own volumes and shares of unsupported
setups, broken devices retrying, a department switched from report-only to enforced on Monday morning, a new
app rolled out on Friday. Their logs are replayed through the shipped `rules.toml` by the pipeline replay runs
(`shared.app.compose`), with Teams, the webhook and PagerDuty configured, and every notification detection
hands to delivery is counted: on the ordinary days each one is a false page. Then each incident of
`shared/synth/incidents.py` is laid over its tenant (from a copy of the replay's state half an hour before it)
and replayed until 45 minutes after it ends: when was it first notified, when was it resolved, how many
notifications did each destination get.

The 100,000-person tenant sends one healthy sign-in in twenty (and every unbound one): the rules' expectation
scales with the healthy sign-ins, so this changes only how much the prior weighs. It keeps the run within a few
minutes on two cores (the tenants run in parallel).
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.app import compose
from shared.core.alert import Notification
from shared.core.message import Message, Origin
from shared.detect.state import MemoryDetectionStore
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.notify import pagerduty, teams
from shared.settings import load_settings
from shared.synth.incidents import Incident, Overlay, usual_rate
from shared.synth.tenant import DAY, Attempt, Tenant, body, records

SIZES = ((100_000, 20), (10_000, 1), (1_000, 1))
DESTINATIONS = ("pagerduty", "teams", "webhook")
PAGE = ("opened", "escalated")  # a notification that calls someone: a new card, a new PagerDuty incident
BEFORE, AFTER = 30 * 60.0, 45 * 60.0
RECORDS_PER_MESSAGE = 200
DELAY = (0, 0, 0, 0, 0, 1, 1, 1, 2, 3)  # minutes a record reaches the hub after its sign-in (Entra's lag)


class Recorder:
    """Stands where delivery's outbox would: keeps what detection hands over."""

    def __init__(self) -> None:
        self.notes: list[Notification] = []

    def enqueue(self, notifications: Iterable[Notification]) -> int:
        batch = list(notifications)
        self.notes += batch
        return len(batch)


@dataclass
class Replay:
    """One tenant's logs through the pipeline replay uses, minute by minute, records arriving up to 3 min late."""

    tenant: Tenant
    recorder: Recorder = field(default_factory=Recorder)
    pipeline: Pipeline = field(init=False)
    serial: int = 0
    waiting: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    signins: int = 0

    def __post_init__(self) -> None:
        settings = load_settings(
            ALERT_TEAMS_WEBHOOK_URL="https://contoso.webhook.office.com/workflows/eval",
            ALERT_WEBHOOK_URL="https://hooks.contoso.example/bindwatch",
            ALERT_PAGERDUTY_ROUTING_KEY="R" * 32,
        )
        detector = compose.detector(settings, MemoryDetectionStore(), self.recorder.enqueue)
        self.pipeline = Pipeline(MemoryStore(), settings.settle_seconds, observers=[detector])

    def feed(self, at: float, attempts: list[Attempt]) -> list[dict[str, Any]]:
        """One minute's sign-ins in; the alert lines decided."""
        minute = int(at // 60)
        rng = random.Random(minute)
        for attempt in attempts:
            self.serial += 1
            self.signins += 1
            self.waiting[minute + rng.choice(DELAY)] += records(attempt, self.serial)
        arrived = self.waiting.pop(minute, [])
        rng.shuffle(arrived)
        messages = [
            Message(body(arrived[i : i + RECORDS_PER_MESSAGE]), Origin(source="eval"))
            for i in range(0, len(arrived), RECORDS_PER_MESSAGE)
        ]
        return [line for line in self.pipeline.ingest(messages).observed if line.get("type") == "alert"]

    def fork(self) -> Replay:
        """A copy to lay an incident over; the original goes on with the ordinary days."""
        twin = copy.deepcopy(self)
        twin.recorder = Recorder()
        twin.pipeline.observers[0].handoff = twin.recorder.enqueue  # type: ignore[attr-defined]
        return twin


def incidents_of(tenant: Tenant) -> list[Incident]:
    """The incidents laid over each tenant: a burst on a big and on a smaller app, day and night, a ramp, a
    platform, a status code; heights from 5x to 50x."""
    start = tenant.start
    popular = sorted(tenant.apps[:-1], key=lambda a: -a.popularity)
    big, mid, small = popular[0].name, popular[len(popular) // 3].name, popular[-2].name
    hour = 3600.0
    return [
        Incident("app, day, 5x", "app", big, 1008, 5, start + 10.5 * hour, 20 * 60),
        Incident("app, night, 20x", "app", big, 1008, 20, start + DAY + 3 * hour, 20 * 60),
        Incident("smaller app, day, 10x", "app", mid, 1008, 10, start + 3 * DAY + 14 * hour, 20 * 60),
        Incident("small app, night, 50x", "app", small, 1008, 50, start + 3 * DAY + 3.5 * hour, 20 * 60),
        Incident("app, ramp to 10x", "app", popular[1].name, 1008, 10, start + 13 * hour, 10 * 60, ramp=20 * 60),
        Incident("platform iOS, day, 10x", "platform", "Ios", 1003, 10, start + 2 * DAY + 11 * hour, 20 * 60),
        Incident("platform macOS, day, 5x", "platform", "MacOs", 1004, 5, start + 3 * DAY + 10 * hour, 20 * 60),
        Incident("code 1002, night, 10x", "code", "1002", 1002, 10, start + DAY + 22 * hour, 20 * 60),
    ]


@dataclass
class Measured:
    """One incident's outcome."""

    incident: Incident
    usual: float
    rate: float
    qualified: float | None  # when it first had >= 10 people and >= 5x usual in the trailing 5 minutes
    people5: int  # distinct people in its first 5 minutes
    enforced5: int
    first: float | None  # first page, any destination
    paged: float | None  # first PagerDuty page
    resolved: dict[str, float] = field(default_factory=dict)  # destination -> resolved notification
    pages: dict[str, int] = field(default_factory=dict)  # destination -> opened + escalated notifications
    keys: int = 0  # PagerDuty dedup_keys triggered
    header: str = ""  # the first Teams card's header
    alerts: list[dict[str, Any]] = field(default_factory=list)  # the alert lines decided during it

    @property
    def target(self) -> bool:
        """The targets are for incidents of at least 10 people and 5x usual within 5 minutes (of starting, or of
        growing that big for a ramp)."""
        return self.qualified is not None and (self.incident.shape == "ramp" or self.people5 >= 10)


@dataclass
class Result:
    users: int
    thin: int
    signins: int
    false_pages: list[Notification]
    measured: list[Measured]
    seconds: float


def run_tenant(users: int, thin: int, only: str = "") -> Result:
    began = time.monotonic()
    tenant = Tenant(users, thin=thin)
    ordinary = Replay(tenant)
    plan = sorted((i for i in incidents_of(tenant) if only in i.name), key=lambda i: i.start)
    measured = []
    end = tenant.start + tenant.days * DAY
    for at, attempts in tenant.stream(tenant.start, end):
        while plan and plan[0].start - BEFORE <= at:
            measured.append(run_incident(ordinary.fork(), plan.pop(0)))
        ordinary.feed(at, attempts)
    ordinary.pipeline.drain()
    false_pages = [n for n in ordinary.recorder.notes if n.reason in PAGE]
    return Result(users, thin, ordinary.signins, false_pages, measured, time.monotonic() - began)


def run_incident(replay: Replay, incident: Incident) -> Measured:
    tenant = replay.tenant
    overlay = Overlay(tenant, incident, usual_rate(tenant, incident))
    people: dict[int, tuple[float, bool]] = {}  # person -> (first unbound, enforced)
    alerts = []
    for at, attempts in tenant.stream(incident.start - BEFORE, incident.end + AFTER):
        extra = overlay.minute(at)
        for attempt in extra:
            people.setdefault(attempt.user.index, (attempt.at, attempt.mode == "enforced"))
        alerts += replay.feed(at, attempts + extra)
    notes = [n for n in replay.recorder.notes if n.created_at >= incident.start]
    pages = [n for n in notes if n.reason in PAGE]
    first5 = [e for t, e in people.values() if t < incident.start + 300]
    result = Measured(
        incident,
        overlay.usual,
        overlay.rate,
        qualified(incident, overlay.usual, people),
        len(first5),
        sum(first5),
        min((n.created_at for n in pages), default=None),
        min((n.created_at for n in pages if n.receiver == "pagerduty"), default=None),
        alerts=alerts,
    )
    for destination in DESTINATIONS:
        result.pages[destination] = sum(1 for n in pages if n.receiver == destination)
        ends = [n.created_at for n in notes if n.receiver == destination and n.reason == "resolved"]
        if ends:
            result.resolved[destination] = max(ends)
    result.keys = len({pagerduty.incident_event(n, "k")["dedup_key"] for n in pages if n.receiver == "pagerduty"})
    cards = [n for n in pages if n.receiver == "teams"]
    if cards:
        heading = teams.message(cards[0])["attachments"][0]["content"]["body"][0]
        result.header = heading["items"][0]["text"].split(" · ")[0]
    return result


def qualified(incident: Incident, usual: float, people: dict[int, tuple[float, bool]]) -> float | None:
    """The first minute end at which the trailing 5 minutes held >= 10 of its people and >= 5x the usual rate."""
    times = sorted(t for t, _ in people.values())
    at = incident.start + 60
    while at <= incident.end:
        recent = sum(1 for t in times if at - 300 <= t < at)
        if recent >= 10 and usual * 5 + recent >= 5 * usual * 5:
            return at
        at += 60
    return None


# --- the report ---


def minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f}"


def report(results: list[Result]) -> str:
    results = sorted(results, key=lambda r: r.users)
    lines = ["Ordinary days (Friday to Monday, no incident): a notification that calls someone is a false page.", ""]
    lines += [
        "| Tenant | Sign-ins judged | False pages a day: PagerDuty | Teams | webhook | Target |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        days = 4
        per = Counter(n.receiver for n in result.false_pages)
        sent = "" if result.thin == 1 else f" (1 healthy in {result.thin} sent)"
        cells = [f"{per[d] / days:.2f}" for d in DESTINATIONS]
        ok = "met" if not result.false_pages else "**missed**"
        lines.append(f"| {result.users:,} people | {result.signins:,}{sent} | {' | '.join(cells)} | 0: {ok} |")
    lines += ["", "Incidents (delays in minutes of event time; pages = notifications that call someone):", ""]
    lines += [
        "| Incident | Tenant | Usual → incident people/min | In first 5 min (enforced) | First page after start "
        "| PagerDuty page | Resolved after end (PD / Teams / webhook) | Pages (PD / Teams / webhook) | "
        "Header | Targets |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for m in sorted(result.measured, key=lambda m: m.incident.start):
            lines.append(_incident_row(result, m))
    lines += ["", _summary(results)]
    for result in results:
        for note in result.false_pages:
            top = note.alerts[0]
            when = datetime.fromtimestamp(note.created_at, UTC).strftime("%a %H:%M")
            lines.append(f"- false page, {result.users:,} people, {note.receiver}, {when}: {top.title}: {top.summary}")
    return "\n".join(lines)


def _incident_row(result: Result, m: Measured) -> str:
    incident = m.incident
    start = incident.start if incident.shape == "burst" else (m.qualified or incident.start)
    first = None if m.first is None else max(0.0, m.first - start)  # a ramp may page before it is that big
    paged = None if m.paged is None else max(0.0, m.paged - start)
    resolved = " / ".join(minutes(m.resolved[d] - incident.end) if d in m.resolved else "—" for d in DESTINATIONS)
    pages = " / ".join(str(m.pages[d]) for d in DESTINATIONS)
    checks = _checks(m, first, start)
    when = "" if incident.shape == "burst" else " (from growing that big)"
    return (
        f"| {incident.name} ({incident.target}) | {result.users:,} | {m.usual:.2f} → {m.rate:.1f} | "
        f"{m.people5} ({m.enforced5}) | {minutes(first)}{when} | {minutes(paged)} | {resolved} | {pages} | "
        f"{m.header or '—'} | {checks} |"
    )


def _checks(m: Measured, first: float | None, start: float) -> str:
    if not m.target:
        pages = "/".join(str(m.pages[d]) for d in DESTINATIONS)
        return "below the targets' size" + ("" if m.pages["teams"] <= 1 else f"; pages {pages}")
    problems = []
    if first is None or first > 300:
        problems.append("late" if first is not None else "missed")
    late = [d for d, at in m.resolved.items() if at - m.incident.end > 900]
    if late:
        problems.append("resolve late: " + ", ".join(late))
    told = [d for d in DESTINATIONS if m.pages[d]]
    if any(m.pages[d] != 1 for d in told):
        problems.append("pages " + "/".join(str(m.pages[d]) for d in DESTINATIONS))
    if m.pages["pagerduty"] and m.keys != 1:
        problems.append(f"{m.keys} PagerDuty keys")
    return "met" if not problems else "**" + "; ".join(problems) + "**"


def _summary(results: list[Result]) -> str:
    incidents = [m for r in results for m in r.measured if m.target]
    false = sum(len(r.false_pages) for r in results)
    met = sum(1 for m in incidents if _checks(m, *_first(m)) == "met")
    took = ", ".join(f"{r.users:,}: {r.seconds:.0f} s" for r in sorted(results, key=lambda r: r.users))
    days = 4 * len(results)
    return f"{false} false pages in {days} tenant-days; {met} of {len(incidents)} incidents met every target ({took})."


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%a %H:%M")


def _first(m: Measured) -> tuple[float | None, float]:
    start = m.incident.start if m.incident.shape == "burst" else (m.qualified or m.incident.start)
    return (None if m.first is None else m.first - start), start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="", help="comma-separated tenant sizes to run (default: all three)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--incident", default="", help="only the incidents whose name contains this")
    parser.add_argument("--verbose", action="store_true", help="also print the alerts decided during incidents")
    args = parser.parse_args(argv)
    sizes = [s for s in SIZES if not args.sizes or str(s[0]) in args.sizes.split(",")]
    began = time.monotonic()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        only = [args.incident] * len(sizes)
        results = list(pool.map(run_tenant, *zip(*sizes, strict=True), only))
    print(report(results))
    if args.verbose:
        for result in results:
            for m in result.measured:
                print(f"\n{m.incident.name}, {result.users:,} people, from {_clock(m.incident.start)}:")
                for line in m.alerts:
                    head = f"{line['at'][11:19]} {line['incident'][4:10]} {line['status']} {line['severity']}"
                    head += f" {line['group']}"
                    print(f"  {head} {line['summary'][:160]}")
    print(f"\n`make eval-detect`: {time.monotonic() - began:.0f} s on {args.workers} workers.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
