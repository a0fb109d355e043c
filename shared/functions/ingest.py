"""The Event Hub trigger: a batch of events in, judged, kept, alerted on; a failing store is retried."""

# No `from __future__ import annotations`: the Python worker reads these signatures' annotations as types.

from collections.abc import Sequence
from datetime import datetime

import azure.functions as func

from shared.core.message import Message, Origin
from shared.ingest.pipeline import Outcome

from .worker import WORKER

bp = func.Blueprint()


@bp.retry(strategy="exponential_backoff", max_retry_count="5", minimum_interval="00:00:05", maximum_interval="00:05:00")
@bp.event_hub_message_trigger(
    arg_name="events",
    event_hub_name="%SIGNIN_EVENTHUB_NAME%",
    connection="EventHubConnection",
    consumer_group="%SIGNIN_EVENTHUB_CONSUMER_GROUP%",
    cardinality=func.Cardinality.MANY,
    data_type=func.DataType.BINARY,
)
def ingest_signins(events: list[func.EventHubEvent], context: func.Context = None) -> None:  # type: ignore[assignment]
    """Judge each sign-in as its records arrive; a store failure is retried, then dead-lettered.

    `context` must be annotated exactly `func.Context` (the worker refuses a union); None for direct calls in tests.
    """
    handle_events(events, context)


def handle_events(events: Sequence[func.EventHubEvent] | func.EventHubEvent, context: func.Context | None) -> Outcome:
    batch = list(events) if isinstance(events, Sequence) else [events]
    return WORKER.ingest().ingest(messages_of(batch), last_try=last_try(context))


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


def last_try(context: func.Context | None) -> bool:
    """Whether the retry policy has no retry left for this batch (retry_count is 0 on the first run)."""
    retry = getattr(context, "retry_context", None)
    if retry is None:
        return False
    limit = retry.max_retry_count
    return limit >= 0 and retry.retry_count >= limit


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
