"""The ingest service: what the Event Hub function, its timers and the standalone consumer run.

Nothing in a message may fail an invocation (the checkpoint moves on either way),
so the pipeline never raises for bad data; it counts it, and it is dead-lettered.
Only a failing store raises, and then the trigger's retry policy runs the batch
again (state writes are idempotent). On the last retry the raw messages go to the
dead-letter container instead, so a batch is never lost without a trace.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from shared.core.message import Message, Origin
from shared.core.timestamp import iso
from shared.ingest.deadletter import DeadLetter, as_rejections
from shared.ingest.pipeline import Outcome, Pipeline, Tally
from shared.notify.delivery import Delivery
from shared.telemetry import log_event

from .logs import log_outcome


@dataclass
class IngestService:
    """The pipeline with where its rejections go and who delivers its alerts (None: no destination set)."""

    pipeline: Pipeline
    dead_letter: DeadLetter
    delivery: Delivery | None = None
    retention_seconds: float = 7 * 86400.0

    def ingest(self, messages: Sequence[Message], last_try: bool = False) -> Outcome:
        """Judge one invocation's messages; a store failure raises for a retry, or is dead-lettered on the last."""
        try:
            outcome = self.pipeline.ingest(messages)
        except Exception as error:
            if not last_try:
                log_event("batch_failed", logging.WARNING, messages=len(messages), error=describe(error))
                raise  # the trigger's retry policy runs the batch again
            return self.give_up(messages, error)
        self.after(outcome)
        return outcome

    def after(self, outcome: Outcome) -> None:
        """What follows every batch: logs first (so a failing blob write loses no trace), dead letters, first sends."""
        log_outcome(outcome)
        self.dead_letter.write(outcome.dead_letters)
        self.send(outcome)

    def report_and_send(self, outcome: Outcome) -> None:
        """The standalone consumer's reporter (it dead-letters itself, before checkpointing)."""
        log_outcome(outcome)
        self.send(outcome)

    def send(self, outcome: Outcome) -> None:
        """First attempts for what detection just handed over; on a quiet tick, the retries that are due too."""
        if self.delivery is None:
            return
        self.delivery.flush()
        if not outcome.tally.messages:
            self.delivery.retry_due()

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
        self.send(outcome)
        return outcome

    def expire(self, now: float) -> int:
        """Delete final sign-ins, and delivered or failed notifications, older than the retention."""
        before = now - self.retention_seconds
        removed = self.pipeline.store.expire(before)
        sent = self.delivery.outbox.expire(before) if self.delivery is not None else 0
        log_event("retention", removed=removed, notifications=sent, before=iso(before))
        return removed


def describe(error: Exception) -> str:
    """The error's type and HTTP status only: SDK messages can carry account URLs."""
    status = getattr(error, "status_code", None)
    return type(error).__name__ + (f" (HTTP {status})" if status else "")
