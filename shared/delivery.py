"""Delivery: the outbox-backed retry stage, the circuit breaker and the drain loop.

The decisions are pure functions of (state, answer, now): how long to wait
(exponential backoff with jitter, never less than the destination's Retry-After),
when to give up, when a destination's circuit opens and when it lets a probe
through. `Delivery` is the shell: it writes each notification to the outbox before
sending, sends through the notifiers, and writes back what happened. A timer calls
`retry_due`; replay calls `drain` and fails when something stayed undelivered.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Protocol

from .alert import Notification
from .clock import Clock, SystemClock
from .destination import Answer, HttpTransport, Notifier, Outcome, Outgoing, notifiers_from_settings
from .outbox import BreakerState, Entry, Outbox
from .settings import Settings
from .telemetry import log_event


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 2.0  # first backoff (seconds); doubles per attempt
    cap: float = 300.0  # longest computed backoff
    max_retry_after: float = 3600.0  # a Retry-After beyond this is capped (a typo must not park alerts for days)
    give_up_after: float = 48 * 3600.0  # pending longer than this (since written) is recorded as failed
    lease: float = 120.0  # how long a sender holds an entry while sending one part


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    threshold: int = 5  # consecutive retryable failures that open the circuit
    cooldown: float = 60.0  # first open period; doubles each time a probe fails
    max_cooldown: float = 900.0  # Azure Monitor action groups rest a failing webhook for 15 minutes


# --- pure: retry decisions ---------------------------------------------------------------


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # "²".isdigit() is True too
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def backoff(attempts: int, policy: RetryPolicy, rand: float) -> float:
    """'Equal jitter': half the exponential step fixed, half random, so retries spread but never hammer."""
    step = min(policy.cap, policy.base * 2.0 ** min(max(attempts - 1, 0), 30))
    return step / 2 + step / 2 * rand


def retry_delay(attempts: int, retry_after: float | None, policy: RetryPolicy, rand: float) -> float:
    """The computed backoff, or the destination's Retry-After when it asks for longer (capped)."""
    asked = min(retry_after, policy.max_retry_after) if retry_after is not None else 0.0
    return max(backoff(attempts, policy, rand), asked)


def breaker_allows(state: BreakerState, now: float) -> bool:
    """Closed, or open with its cool-down over (half-open: the next attempt is the probe)."""
    return now >= state.open_until


def breaker_after(state: BreakerState, outcome: Outcome, now: float, policy: BreakerPolicy) -> BreakerState:
    """Success closes the circuit; a retryable failure counts and opens it at the threshold.
    A permanent failure (a 4xx) says the destination is up, so it leaves the count alone."""
    if outcome == "delivered":
        return BreakerState()
    if outcome == "failed":
        return state
    failures = state.failures + 1
    if failures < policy.threshold:
        return replace(state, failures=failures)
    cooldown = min(policy.max_cooldown, policy.cooldown * 2.0 ** min(state.opened, 30))
    return BreakerState(failures=failures, open_until=now + cooldown, opened=state.opened + 1)


def settle(
    entry: Entry, outcome: Outcome, answer: Answer, now: float, *, policy: RetryPolicy, rand: float, describe: str
) -> Entry:
    """The entry after an attempt: delivered, failed for good, or pending until the next due time."""
    result = replace(entry, attempts=entry.attempts + 1, http_status=answer.status, answer=describe)
    result.updated, result.lease_until = now, 0.0
    if outcome == "delivered":
        result.state = "delivered"
    elif outcome == "failed":
        result.state = "failed"
    elif now - entry.created >= policy.give_up_after:
        result.state = "failed"
        result.answer = f"gave up after {result.attempts} attempts; last: {describe}"
    else:
        result.next_at = now + retry_delay(result.attempts, parse_retry_after(answer.retry_after, now), policy, rand)
    return result


# --- the shell ------------------------------------------------------------------------------


class Transport(Protocol):
    """What Delivery needs from the network edge (HttpTransport; tests may pass their own)."""

    def send(self, outgoing: Outgoing) -> Answer: ...


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

    def flush(self) -> int:
        """One attempt for each entry enqueued since the last flush; the timer retries the rest."""
        fresh, self._fresh = self._fresh, []
        return sum(self._attempt(entry) for entry in fresh)

    def retry_due(self, now: float | None = None) -> int:
        """Attempt every pending entry that is due; returns how many were attempted."""
        due = self.outbox.due(self.clock.now() if now is None else now)
        attempted = 0
        for entry in due:
            attempted += self._attempt(entry)
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

    def close(self) -> None:
        close = getattr(self.transport, "close", None)
        if close:
            close()

    def _waiting(self) -> list[Entry]:
        entries = (self.outbox.get(d, i) for d, i in self._submitted)
        return [e for e in entries if e is not None and e.state == "pending"]

    def _attempt(self, entry: Entry) -> bool:
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
        outcome, answer = self._send(claimed, notifier, now)
        self.outbox.save_breaker(claimed.destination, breaker_after(circuit, outcome, self.clock.now(), self.breaker))
        self._finish(claimed, outcome, answer, self.clock.now(), notifier)
        return True

    def _send(self, entry: Entry, notifier: Notifier, now: float) -> tuple[Outcome, Answer]:
        """Each part not yet accepted, in order; the first that is not accepted stops the attempt."""
        outcome: Outcome = "delivered"
        answer = Answer(status=None)
        for outgoing in notifier.requests(entry.notification, now):
            if outgoing.part in entry.done:
                continue
            answer = self.transport.send(outgoing)
            outcome = notifier.judge(answer)
            if outcome != "delivered":
                break
            entry.done.append(outgoing.part)
            entry.lease_until = self.clock.now() + self.policy.lease
            self.outbox.save(entry)  # an accepted part is never sent again, even if this instance dies now
        return outcome, answer

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


def build_delivery(settings: Settings, outbox: Outbox, clock: Clock | None = None) -> Delivery | None:
    """A Delivery over the configured destinations; None when no destination is configured."""
    notifiers = notifiers_from_settings(settings)
    if not notifiers:
        return None
    return Delivery(outbox, notifiers, clock)
