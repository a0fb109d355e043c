"""The Functions host's way in: Event Hub events to the pipeline, structured logs out.

Nothing in a message may fail the invocation (the checkpoint moves on either way),
so the reader never raises for bad data; it counts and dead-letters it to a blob.
Only a failing store raises, and then the trigger's retry policy runs the batch
again (state writes are idempotent). On the last retry the raw messages go to the
dead-letter container instead, so a batch is never lost without a trace.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import azure.functions as func

from .deadletter import DeadLetter, as_rejections, open_dead_letter
from .delivery import Delivery, build_delivery
from .destination import notifiers_from_settings
from .detection import build_detector
from .lookup import StoreDetails
from .outbox import TableOutbox
from .pipeline import Outcome, Pipeline, Tally
from .record import Message, Origin
from .request import iso
from .rule import load_rules
from .settings import current_settings
from .storage import table_service
from .table_store import TableStore, open_table_store
from .telemetry import log_event
from .verdict import verdict_line

# The Azure SDKs log every HTTP request at INFO; the host would ship each one to Application Insights.
logging.getLogger("azure").setLevel(logging.WARNING)

_pipeline: Pipeline | None = None
_dead_letter: DeadLetter | None = None
_delivery: Delivery | None = None


def validate() -> None:
    """Read the settings, the rules file and the destinations now, so a bad value stops the start naming it."""
    settings = current_settings()
    load_rules(settings.rules_file)
    notifiers_from_settings(settings)  # decodes ALERT_WEBHOOK_SECRET


def pipeline() -> Pipeline:
    """One pipeline per worker process, built on first use: Table Storage state, detection and delivery."""
    global _pipeline, _delivery
    if _pipeline is None:
        settings = current_settings()
        service = table_service(settings)
        _delivery = build_delivery(settings, TableOutbox(service, settings.state_table_prefix))
        handoff = _delivery.enqueue if _delivery else None
        detector = build_detector(settings, "table", service, handoff=handoff)
        _pipeline = Pipeline(open_table_store(settings), settings.settle_seconds, observers=[detector])
    return _pipeline


def delivery() -> Delivery | None:
    """The destinations' outbox and notifiers, built with the pipeline (None when no destination is configured)."""
    return _delivery


def details() -> StoreDetails:
    """The on-call lookup reads the same store the pipeline writes."""
    store = pipeline().store
    if not isinstance(store, TableStore):
        raise TypeError("the lookup needs the Table store")
    return StoreDetails(store)


def dead_letter() -> DeadLetter:
    """Where rejected input goes: the REJECTED_CONTAINER blob container."""
    global _dead_letter
    if _dead_letter is None:
        _dead_letter = open_dead_letter(current_settings())
    return _dead_letter


def use_pipeline(
    replacement: Pipeline | None, dead_letters: DeadLetter | None = None, deliveries: Delivery | None = None
) -> None:
    """Tests and the standalone consumer choose the pipeline (and so the store) explicitly; None rebuilds."""
    global _pipeline, _dead_letter, _delivery
    _pipeline = replacement
    _dead_letter = dead_letters
    _delivery = deliveries


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


def handle_events(
    events: Sequence[func.EventHubEvent] | func.EventHubEvent, context: func.Context | None = None
) -> Outcome:
    """Judge one invocation's events, keep what was rejected, and log what happened."""
    batch = list(events) if isinstance(events, Sequence) else [events]
    messages = messages_of(batch)
    try:
        outcome = pipeline().ingest(messages)
    except Exception as error:
        if not last_try(context):
            log_event("batch_failed", logging.WARNING, messages=len(messages), error=_describe(error))
            raise  # the trigger's retry policy runs the batch again
        return give_up(messages, error)
    after(outcome)
    return outcome


def after(outcome: Outcome) -> None:
    """What follows every batch: logs first (so a failing blob write loses no trace), dead letters, first sends."""
    report(outcome)
    dead_letter().write(outcome.rejections)
    send(outcome)


def send(outcome: Outcome) -> None:
    """First attempts for what detection just handed over; on a quiet tick, the retries that are due too."""
    sender = delivery()
    if sender is None:
        return
    sender.flush()
    if not outcome.tally.messages:
        sender.retry_due()


def report_and_send(outcome: Outcome) -> None:
    """The standalone consumer's reporter: the same logs and deliveries as the function."""
    report(outcome)
    send(outcome)


def last_try(context: func.Context | None) -> bool:
    """Whether the retry policy has no retry left for this batch (retry_count is 0 on the first run)."""
    retry = getattr(context, "retry_context", None)
    if retry is None:
        return False
    limit = retry.max_retry_count
    return limit >= 0 and retry.retry_count >= limit


def give_up(messages: Sequence[Message], error: Exception) -> Outcome:
    """Retries are spent: keep the raw messages in the dead-letter container to re-drive, and say so loudly."""
    rejections = as_rejections(messages, f"not processed after the last retry: {_describe(error)}")
    name = dead_letter().write(rejections)
    first = messages[0].origin if messages else Origin()
    log_event(
        "batch_dead_lettered",
        logging.ERROR,
        messages=len(messages),
        blob=name,
        error=_describe(error),
        partition=first.partition,
        sequence_number=first.sequence_number,
    )
    tally = Tally(messages=len(messages), rejected=len(messages))
    return Outcome(tally=tally, rejections=rejections, observed=[], clock=None)


def _describe(error: Exception) -> str:
    """The error's type and HTTP status only: SDK messages can carry account URLs."""
    status = getattr(error, "status_code", None)
    return type(error).__name__ + (f" (HTTP {status})" if status else "")


def handle_timer() -> Outcome:
    """Settle sign-ins and resolve alerts whose traffic stopped; retry notifications that are due."""
    outcome = pipeline().tick()
    report(outcome)
    send(outcome)
    return outcome


def handle_retention(now: float | None = None) -> int:
    """Delete final sign-ins, and delivered or failed notifications, older than RETENTION_DAYS."""
    before = (time.time() if now is None else now) - current_settings().retention_days * 86400.0
    removed = pipeline().store.expire(before)
    sender = delivery()
    sent = sender.outbox.expire(before) if sender is not None else 0
    log_event("retention", removed=removed, notifications=sent, before=iso(before))
    return removed


def report(outcome: Outcome) -> None:
    """Structured events for Log Analytics: batch counts, each rejection, each unbound verdict and each alert.

    Bound and unevaluated verdicts are counted, not logged one by one: at a tenant's volume that would be
    hundreds of thousands of trace lines a day for no decision anyone takes.
    """
    tally = outcome.tally
    counts = Counter(signin.verdict for signin in outcome.finals)
    enforcement = Counter(signin.enforcement.label for signin in outcome.finals if signin.unbound)
    if tally.messages or outcome.finals:
        log_event(
            "batch",
            messages=tally.messages,
            records=tally.records,
            skipped=sum(tally.skipped.values()),
            rejected=tally.rejected,
            duplicates=tally.duplicates,
            signins=tally.signins,
            finals=tally.finals,
            bound=counts["bound"],
            unbound=counts["unbound"],
            unevaluated=counts["unevaluated"],
            unbound_report_only=enforcement["report_only"],
            unbound_enforced=enforcement["enforced"],
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
    for signin in outcome.finals:
        if signin.unbound:
            line = verdict_line(signin)
            log_event("verdict", **{k: line.get(k) for k in _VERDICT_FIELDS})
    for line in outcome.observed:
        if line.get("type") == "alert":
            log_event("alert", logging.WARNING, **{k: line.get(k) for k in _ALERT_FIELDS})


_VERDICT_FIELDS = ("correlation_id", "verdict", "enforcement", "status_codes", "user", "apps", "device_os", "revision")
_ALERT_FIELDS = ("status", "rule", "fingerprint", "group", "at", "title", "severity", "enforcement")


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
