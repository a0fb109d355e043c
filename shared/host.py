"""The Functions host's way in: Event Hub events to the pipeline, structured logs out.

Nothing in a message may fail the invocation (the checkpoint moves on either way),
so the reader never raises for bad data; it counts and dead-letters it. Only a
failing store raises, and then the trigger's retry policy runs the batch again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import azure.functions as func

from .pipeline import Outcome, Pipeline
from .record import Message, Origin
from .settings import current_settings
from .store import MemoryStore
from .telemetry import log_event

_pipeline: Pipeline | None = None


def pipeline() -> Pipeline:
    """One pipeline per worker process, built on first use from the validated settings."""
    global _pipeline
    if _pipeline is None:
        settings = current_settings()
        _pipeline = Pipeline(MemoryStore(), settings.settle_seconds)
    return _pipeline


def use_pipeline(replacement: Pipeline | None) -> None:
    """Tests and the standalone consumer choose the pipeline (and so the store) explicitly."""
    global _pipeline
    _pipeline = replacement


def messages_of(events: Sequence[func.EventHubEvent]) -> list[Message]:
    """Event Hub events as messages, each with where it came from (for the dead-letter trail)."""
    partition = _partition_of(events)
    return [
        Message(
            body=event.get_body() or b"",
            origin=Origin(
                source="eventhub",
                partition=partition,
                offset=None if event.offset is None else str(event.offset),
                sequence_number=event.sequence_number,
                enqueued_time=_seconds(event.enqueued_time),
            ),
        )
        for event in events
    ]


def handle_events(events: Sequence[func.EventHubEvent] | func.EventHubEvent) -> Outcome:
    """Judge one invocation's events and log what happened."""
    batch = list(events) if isinstance(events, Sequence) else [events]
    outcome = pipeline().ingest(messages_of(batch))
    report(outcome)
    return outcome


def handle_timer() -> Outcome:
    """Settle the sign-ins whose window passed while no records came."""
    outcome = pipeline().tick()
    report(outcome)
    return outcome


def report(outcome: Outcome) -> None:
    """Structured events for Log Analytics: the batch counts, each rejection, each verdict and alert."""
    tally = outcome.tally
    verdicts = [line for line in outcome.lines if line.get("type") == "verdict"]
    counts = {kind: sum(1 for v in verdicts if v["verdict"] == kind) for kind in ("bound", "unbound", "unevaluated")}
    if tally.messages or verdicts:
        log_event(
            "batch",
            messages=tally.messages,
            records=tally.records,
            skipped=sum(tally.skipped.values()),
            rejected=tally.rejected,
            duplicates=tally.duplicates,
            signins=tally.signins,
            finals=tally.finals,
            **counts,
        )
    for rejection in outcome.rejections:
        origin = rejection.origin
        log_event(
            "rejected",
            logging.WARNING,
            reason=rejection.reason,
            partition=origin.partition,
            offset=origin.offset,
            sequence_number=origin.sequence_number,
            record_index=rejection.index,
        )
    for line in outcome.lines:
        _log_line(line)


def _log_line(line: dict[str, Any]) -> None:
    if line.get("type") == "verdict":
        fields = ("correlation_id", "verdict", "enforcement", "status_codes", "user", "apps", "revision")
        log_event("verdict", **{k: line.get(k) for k in fields})
    elif line.get("type") == "alert":
        fields = ("status", "rule", "fingerprint", "group", "at")
        log_event("alert", logging.WARNING, **{k: line.get(k) for k in fields})


def _partition_of(events: Sequence[func.EventHubEvent]) -> str | None:
    """PartitionContext's layout in Python is not documented; read it defensively."""
    if not events:
        return None
    metadata = events[0].metadata or {}
    context = metadata.get("PartitionContext")
    if isinstance(context, dict):
        value = context.get("PartitionId") or context.get("partitionId")
        return None if value is None else str(value)
    return None


def _seconds(value: datetime | None) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None
