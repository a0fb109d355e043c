"""The ingest service: what the Event Hub function, its timers and the standalone consumer run.

Nothing in a message may fail an invocation (the checkpoint moves on either way),
so the pipeline never raises for bad data; it counts it, and it is dead-lettered.
Only a failing store raises, and then the trigger's retry policy runs the batch
again (state writes are idempotent). On the last retry the raw messages go to the
dead-letter container instead, so a batch is never lost without a trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from shared.core.message import Message, Origin
from shared.core.timestamp import iso
from shared.ingest.deadletter import DeadLetter, as_rejections
from shared.ingest.pipeline import Outcome, Pipeline, Tally
from shared.notify.delivery import Delivery
from shared.telemetry import log_event

from .logs import log_outcome

FIRST_ATTEMPTS_SECONDS = 10.0  # after a batch, in the Event Hub invocation: one slow destination cannot stall it
TIMER_DELIVERY_SECONDS = 40.0  # each (bounded) on the minute timer, so a run ends before the next one starts


SLICE_BYTES = 16 * 1024 * 1024  # an invocation is judged in slices of message bodies this large, budget checked between


class OverBudget(RuntimeError):
    """The invocation used its time budget before judging every message; the host runs it again."""


@dataclass
class IngestService:
    """The pipeline with where its rejections go and who delivers its alerts (None: no destination set).

    `budget_seconds` bounds one invocation's work well inside the host's functionTimeout: messages are judged
    in slices, and when the budget is spent the rest is retried by the host (what was done is kept: every
    write is idempotent) or, on the last try, dead-lettered whole, so nothing is lost to a timeout.
    """

    pipeline: Pipeline
    dead_letter: DeadLetter
    delivery: Delivery | None = None
    retention_seconds: float = 7 * 86400.0
    budget_seconds: float = 300.0
    slice_bytes: int = SLICE_BYTES
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False)

    def ingest(self, messages: Sequence[Message], last_try: bool = False) -> Outcome:
        """Judge one invocation's messages; a store failure raises for a retry, or is dead-lettered on the last."""
        started = self.monotonic()
        done = Outcome.empty()
        parts = slices(messages, self.slice_bytes)
        for index, part in enumerate(parts):
            rest = [m for later in parts[index:] for m in later]
            if index and self.monotonic() - started > self.budget_seconds:
                return self._stop(done, rest, OverBudget(f"over the {self.budget_seconds:g} s budget"), last_try)
            try:
                done.add(self.pipeline.ingest(part))
            except Exception as error:
                return self._stop(done, rest, error, last_try)
        self.after(done)
        return done

    def _stop(self, done: Outcome, rest: Sequence[Message], error: Exception, last_try: bool) -> Outcome:
        """What was judged is reported either way; the rest is retried, or dead-lettered on the last try."""
        if done.tally.messages:
            self.after(done)
        if not last_try:
            log_event("batch_failed", logging.WARNING, messages=len(rest), error=describe(error))
            raise error  # the trigger's retry policy runs the batch again
        done.add(self.give_up(rest, error))
        return done

    def after(self, outcome: Outcome) -> None:
        """What follows every batch: logs first (so a failing blob write loses no trace), dead letters, first sends."""
        log_outcome(outcome)
        self.dead_letter.write(outcome.dead_letters)
        self.send(ticked=False)

    def report_and_send(self, outcome: Outcome) -> None:
        """The standalone consumer's reporter (it dead-letters itself, before checkpointing)."""
        log_outcome(outcome)
        self.send(ticked=not outcome.tally.messages)

    def send(self, ticked: bool) -> None:
        """First attempts for what detection just handed over; on the timer's tick, the retries that are due too.

        Both are bounded in time: a slow destination must not stall ingestion (the outbox keeps what was not
        attempted, and the timer sends it), nor hold the minute timer past its next run."""
        if self.delivery is None:
            return
        if not ticked:
            self.delivery.flush(budget=FIRST_ATTEMPTS_SECONDS)
            return
        self.delivery.flush(budget=TIMER_DELIVERY_SECONDS)
        self.delivery.retry_due(budget=TIMER_DELIVERY_SECONDS)

    def give_up(self, messages: Sequence[Message], error: Exception) -> Outcome:
        """Retries are spent: keep the raw messages in the dead-letter container to re-drive, and say so loudly."""
        rejections = as_rejections(messages, f"not processed after the last retry: {describe(error)}")
        name = self.dead_letter.write(rejections)
        first = messages[0].origin if messages else Origin()
        log_event(
            "batch_dead_lettered",
            logging.ERROR,
            messages=len(messages),
            blob=name,
            error=describe(error),
            partition=first.partition,
            sequence_number=first.sequence_number,
        )
        tally = Tally(messages=len(messages), rejected=len(messages))
        return Outcome(tally=tally, rejections=rejections, observed=[], clock=None)

    def tick(self) -> Outcome:
        """Settle sign-ins and resolve alerts whose traffic stopped; retry notifications that are due."""
        outcome = self.pipeline.tick()
        log_outcome(outcome)
        self.send(ticked=True)
        return outcome

    def expire(self, now: float) -> int:
        """Delete final sign-ins, and delivered or failed notifications, older than the retention."""
        before = now - self.retention_seconds
        removed = self.pipeline.store.expire(before)
        sent = self.delivery.outbox.expire(before) if self.delivery is not None else 0
        log_event("retention", removed=removed, notifications=sent, before=iso(before))
        return removed


def slices(messages: Sequence[Message], limit: int) -> list[list[Message]]:
    """Consecutive messages in slices of about `limit` bytes of bodies (a message larger than that alone)."""
    parts: list[list[Message]] = [[]]
    size = 0
    for message in messages:
        if parts[-1] and size + len(message.body) > limit:
            parts.append([])
            size = 0
        parts[-1].append(message)
        size += len(message.body)
    return parts


def describe(error: Exception) -> str:
    """The error's type and HTTP status only: SDK messages can carry account URLs (ours carry none)."""
    if isinstance(error, OverBudget):
        return f"{type(error).__name__}: {error}"
    status = getattr(error, "status_code", None)
    return type(error).__name__ + (f" (HTTP {status})" if status else "")
