"""Delivery: the shell that writes each notification to the outbox, sends it through its notifier, and retries.

The decisions are pure (`retry.py`, `breaker.py`); this is where they meet the
outbox, the notifiers and the transport. The function makes the first attempt
after each batch; a timer calls `retry_due`; replay calls `drain` and fails when
something stayed undelivered.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from shared.core.alert import Notification
from shared.core.clock import Clock, SystemClock
from shared.telemetry import log_event

from .breaker import BreakerPolicy, BreakerState, breaker_after, breaker_allows
from .destination import Answer, Notifier, Outcome, Outgoing
from .outbox import Entry, Outbox
from .retry import RetryPolicy, settle
from .transport import HttpTransport


class Transport(Protocol):
    """What Delivery needs from the network edge (HttpTransport; tests may pass their own)."""

    def send(self, outgoing: Outgoing, deadline: float | None = None) -> Answer:
        """One request, finished or abandoned within `deadline` seconds (the transport's own when None)."""
        ...


LOST = Answer(status=None, error="another sender holds it now")


@dataclass
class Report:
    """Where this Delivery's own submissions stand."""

    delivered: int = 0
    pending: int = 0
    failed: int = 0
    undelivered: list[tuple[str, str, str]] = field(default_factory=list)  # (destination, notification id, state)

    @property
    def ok(self) -> bool:
        return not self.undelivered


class Delivery:
    """Outbox first, then send; the timer (`retry_due`) and replay (`drain`) retry what is pending."""

    def __init__(
        self,
        outbox: Outbox,
        notifiers: Mapping[str, Notifier] | Iterable[Notifier],
        clock: Clock | None = None,
        *,
        transport: Transport | None = None,
        policy: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.outbox = outbox
        items = notifiers.values() if isinstance(notifiers, Mapping) else notifiers
        self.notifiers = {n.name: n for n in items}
        self.clock = clock or SystemClock()
        self.transport = transport or HttpTransport()
        self.policy = policy or RetryPolicy()
        self.breaker = breaker or BreakerPolicy()
        self._rand, self._sleep = rand, sleep
        self._submitted: dict[tuple[str, str], None] = {}
        self._fresh: list[Entry] = []

    def submit(self, notifications: Iterable[Notification]) -> Report:
        """Write each notification to the outbox, then try to send each once now."""
        self.enqueue(notifications)
        self.flush()
        return self.report()

    def enqueue(self, notifications: Iterable[Notification]) -> int:
        """The durable hand-over: written to the outbox before anyone may consider them sent."""
        written = 0
        for notification in notifications:
            now = self.clock.now()
            entry = Entry(notification.receiver, notification, created=now, next_at=now, updated=now)
            self._submitted[(entry.destination, entry.id)] = None
            if self.outbox.add(entry):
                log_event("delivery", destination=entry.destination, status="queued", notification=entry.id)
                self._fresh.append(entry)
                written += 1
        return written

    def flush(self, budget: float | None = None) -> int:
        """One attempt for each entry enqueued since the last flush, within `budget` seconds (None: no limit).

        The ingest path gives a small budget so a slow destination cannot stall ingestion; what is not
        attempted in time stays pending in the outbox, due now, and the timer sends it."""
        fresh, self._fresh = self._fresh, []
        return self._attempt_all(fresh, budget)

    def retry_due(self, now: float | None = None, budget: float | None = None) -> int:
        """Attempt every pending entry that is due, within `budget` seconds; returns how many were attempted."""
        return self._attempt_all(self.outbox.due(self.clock.now() if now is None else now), budget)

    def _attempt_all(self, entries: list[Entry], budget: float | None) -> int:
        end = None if budget is None else self.clock.now() + budget
        attempted = 0
        for entry in entries:
            left = None if end is None else end - self.clock.now()
            if left is not None and left <= 0:
                break
            attempted += self._attempt(entry, left)
        return attempted

    def drain(self, deadline_seconds: float) -> Report:
        """Retry until this Delivery's submissions are delivered or failed, or the deadline passes."""
        end = self.clock.now() + deadline_seconds
        while True:
            self.retry_due()
            waiting = self._waiting()
            now = self.clock.now()
            if not waiting or now >= end:
                return self.report()
            wake = min(max(e.next_at, e.lease_until) for e in waiting)
            self._sleep(min(max(wake - now, 0.01), end - now))

    def report(self) -> Report:
        report = Report()
        for destination, entry_id in self._submitted:
            entry = self.outbox.get(destination, entry_id)
            state = entry.state if entry else "missing"
            if state == "delivered":
                report.delivered += 1
                continue
            report.pending += state == "pending"
            report.failed += state != "pending"
            report.undelivered.append((destination, entry_id, state))
        return report

    def waiting(self) -> list[Entry]:
        """This Delivery's notifications still pending, with their last answer (what a waiting CLI reports)."""
        return self._waiting()

    def close(self) -> None:
        close = getattr(self.transport, "close", None)
        if close:
            close()

    def _waiting(self) -> list[Entry]:
        entries = (self.outbox.get(d, i) for d, i in self._submitted)
        return [e for e in entries if e is not None and e.state == "pending"]

    def _attempt(self, entry: Entry, deadline: float | None = None) -> bool:
        """Claim, check the circuit, send the parts not yet accepted, write back. False if not attempted."""
        now = self.clock.now()
        claimed = self.outbox.claim(entry, now + self.policy.lease)
        if claimed is None:
            return False
        notifier = self.notifiers.get(claimed.destination)
        if notifier is None:
            self._finish(claimed, "failed", Answer(None, error="destination not configured"), now, None)
            return True
        circuit = self.outbox.load_breaker(claimed.destination)
        if not breaker_allows(circuit, now):
            self._hold(claimed, circuit)
            return False
        outcome, answer = self._send(claimed, notifier, now, deadline)
        if answer is LOST:
            return True  # another sender took the entry over; it writes the result
        self.outbox.save_breaker(claimed.destination, breaker_after(circuit, outcome, self.clock.now(), self.breaker))
        self._finish(claimed, outcome, answer, self.clock.now(), notifier)
        return True

    def _send(self, entry: Entry, notifier: Notifier, now: float, deadline: float | None) -> tuple[Outcome, Answer]:
        """Each part not yet accepted, in order; the first that is not accepted stops the attempt.

        The lease is renewed before a part whenever what is left of it could not cover the request's deadline,
        so no second instance claims the entry while this one is still sending it."""
        outcome: Outcome = "delivered"
        answer = Answer(status=None)
        for outgoing in notifier.requests(entry.notification, now):
            if outgoing.part in entry.done:
                continue
            if not self._hold_lease(entry, deadline):
                return "retry", LOST
            answer = self.transport.send(outgoing, deadline)
            outcome = notifier.judge(answer)
            if outcome != "delivered":
                break
            entry.done.append(outgoing.part)
            entry.lease_until = self.clock.now() + self.policy.lease
            self.outbox.save(entry)  # an accepted part is never sent again, even if this instance dies now
        return outcome, answer

    def _hold_lease(self, entry: Entry, deadline: float | None) -> bool:
        """Keep the lease for at least one more request; False when another sender has the entry now."""
        needed = self.policy.lease / 2 if deadline is None else deadline
        if entry.lease_until - self.clock.now() >= needed + 5.0:
            return True
        entry.lease_until = self.clock.now() + self.policy.lease
        return self.outbox.save(entry)

    def _hold(self, entry: Entry, circuit: BreakerState) -> None:
        """The circuit is open: leave the entry pending until it closes, without counting an attempt."""
        entry.next_at, entry.lease_until = max(entry.next_at, circuit.open_until), 0.0
        self.outbox.save(entry)
        log_event("delivery", destination=entry.destination, status="circuit_open", notification=entry.id)

    def _finish(self, entry: Entry, outcome: Outcome, answer: Answer, now: float, notifier: Notifier | None) -> None:
        text = answer.error or (notifier.redact(answer.text) if notifier else answer.text)
        describe = f"{answer.status}: {text}" if answer.status is not None else text
        result = settle(entry, outcome, answer, now, policy=self.policy, rand=self._rand(), describe=describe)
        self.outbox.save(result)
        fields = {"attempts": result.attempts, "http_status": answer.status, "notification": result.id}
        if result.state == "failed":
            fields["answer"] = result.answer
        level = logging.WARNING if result.state == "failed" else logging.INFO
        status = "retry" if result.state == "pending" else result.state
        log_event("delivery", level, destination=result.destination, status=status, **fields)
