"""The standalone consumer: the function's pipeline as a plain process with blob checkpoints.

For teams that run containers instead of Functions. Like the Functions host it
checkpoints only after a batch was processed, so delivery is at-least-once and the
store's idempotent writes absorb the repeats. The Event Hubs client is made by a
factory so tests can put a fake in its place; nothing else is faked.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import Any, Protocol

from azure.eventhub import EventData

from shared.core.message import Message, Origin
from shared.ingest.deadletter import DeadLetter
from shared.ingest.pipeline import Pipeline
from shared.telemetry import log_event

from .hub import SERVICE_ERRORS, Hub, describe_error, log_reason

log = logging.getLogger("bindwatch.eventhub")

DEFAULT_CHECKPOINT_CONTAINER = "bindwatch-checkpoints"
START_POSITIONS = {"earliest": "-1", "latest": "@latest"}  # the SDK's names for "from the start" and "only new"


@dataclass(frozen=True)
class CheckpointLocation:
    """A blob container for checkpoints and partition ownership: by URL (Entra ID) or by connection string."""

    container: str
    account_url: str | None = None
    connection: str | None = field(default=None, repr=False)  # may hold a key: never logged

    def describe(self) -> str:
        where = self.account_url or "the account in the storage connection string"
        return f"container {self.container} in {where}"


@dataclass(frozen=True)
class ReceiveOptions:
    batch: int = 100  # most events per batch
    max_wait: float = 5.0  # seconds to wait to fill a batch
    start: str = "earliest"  # where a partition without a checkpoint starts (START_POSITIONS)


class PartitionContext(Protocol):
    """The part of `azure.eventhub.PartitionContext` that the consumer uses."""

    @property
    def partition_id(self) -> str: ...

    def update_checkpoint(self, event: EventData | None = None, **kwargs: Any) -> None: ...


class ConsumerClient(Protocol):
    """The part of `EventHubConsumerClient` that `consume` uses."""

    def receive_batch(self, on_event_batch: Callable[..., None], **kwargs: Any) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ConsumeTarget:
    hub: Hub
    consumer_group: str
    checkpoints: CheckpointLocation


ClientFactory = Callable[[ConsumeTarget], ConsumerClient]
Reporter = Callable[[Any], None]


def message_of(event: EventData, partition: str) -> Message:
    """One received event as the pipeline's message, with where it came from (for the dead-letter trail)."""
    return Message(
        body=_body_bytes(event),
        origin=Origin(
            source="eventhub",
            partition=partition,
            offset=event.offset,
            sequence_number=event.sequence_number,
            enqueued_time=_seconds(event.enqueued_time),
        ),
    )


def _body_bytes(event: EventData) -> bytes:
    """Data bodies as their exact bytes (a bad body must reach the dead-letter trail unchanged)."""
    body = event.body
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    try:
        return b"".join(body)
    except TypeError:
        return event.body_as_str().encode()  # AMQP value or sequence bodies: not what Entra sends


def _seconds(value: datetime | None) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


class Consumer:
    """The callbacks `receive_batch` calls: judge, report, dead-letter, then checkpoint; settle while quiet."""

    def __init__(
        self,
        pipeline: Pipeline,
        report: Reporter,
        dead_letter: DeadLetter,
        tick_seconds: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pipeline = pipeline
        self.report = report
        self.dead_letter = dead_letter
        self.tick_seconds = tick_seconds
        self.monotonic = monotonic
        self.last_settled = monotonic()
        self.stopping = threading.Event()

    def on_event_batch(self, context: PartitionContext, events: Sequence[EventData]) -> None:
        """A failure propagates without a checkpoint: the SDK closes the partition and reads it again from there."""
        if not events:
            self.maybe_tick()
            return
        messages = [message_of(event, context.partition_id) for event in events]
        try:
            self._process(messages)
        except Exception as error:
            log_event(
                "consume_failed",
                logging.ERROR,
                partition=context.partition_id,
                first_sequence_number=events[0].sequence_number,
                last_sequence_number=events[-1].sequence_number,
                error=log_reason(error),
            )
            raise
        self.last_settled = self.monotonic()
        context.update_checkpoint(events[-1])

    def _process(self, messages: list[Message]) -> None:
        outcome = self.pipeline.ingest(messages)
        self.report(outcome)  # rejections are logged first, so a failing blob write loses none of them
        self.dead_letter.write(outcome.dead_letters)

    def maybe_tick(self) -> None:
        """Settle sign-ins whose window passed while no records came; a failing tick waits for the next one."""
        if self.monotonic() - self.last_settled < self.tick_seconds:
            return
        self.last_settled = self.monotonic()
        try:
            outcome = self.pipeline.tick()
        except Exception as error:
            log_event("tick_failed", logging.ERROR, error=log_reason(error))
            return
        self.report(outcome)

    def on_error(self, context: PartitionContext | None, error: Exception) -> None:
        """Receive, checkpoint and load-balancing errors, after the SDK's own retries; it keeps trying."""
        level = logging.INFO if self.stopping.is_set() else logging.WARNING
        partition = context.partition_id if context is not None else None
        log_event("consumer_error", level, partition=partition, error=log_reason(error))


def open_consumer(target: ConsumeTarget) -> ConsumerClient:
    """The real client: the signed-in identity for the hub; for checkpoints, it or the connection string."""
    from azure.eventhub import EventHubConsumerClient
    from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential()
    location = target.checkpoints
    if location.connection:
        store = BlobCheckpointStore.from_connection_string(location.connection, location.container)
    else:
        store = BlobCheckpointStore(location.account_url or "", location.container, credential=credential)
    return EventHubConsumerClient(
        fully_qualified_namespace=target.hub.namespace,
        eventhub_name=target.hub.name,
        consumer_group=target.consumer_group,
        credential=credential,
        checkpoint_store=store,
    )


def receive(client: ConsumerClient, consumer: Consumer, options: ReceiveOptions) -> int:
    """Receive until SIGTERM or SIGINT (0), or until the service refuses us (1)."""
    stop = consumer.stopping
    closer = threading.Thread(target=_close_when, args=(stop, client), name="bindwatch-close", daemon=True)
    closer.start()
    try:
        with _stop_on_signals(stop):
            client.receive_batch(
                on_event_batch=consumer.on_event_batch,
                on_error=consumer.on_error,
                max_batch_size=options.batch,
                max_wait_time=options.max_wait,
                starting_position=START_POSITIONS[options.start],
            )
    except SERVICE_ERRORS as error:
        print(f"bindwatch: consuming stopped: {describe_error(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second signal: stop without waiting for the batch
        return 130
    finally:
        stopped = stop.is_set()
        stop.set()
        closer.join(timeout=30)
    if not stopped:
        print("bindwatch: consuming stopped without a stop signal", file=sys.stderr)
        return 1
    log.warning("stopped")
    return 0


def _close_when(stop: threading.Event, client: ConsumerClient) -> None:
    """`close()` from another thread is how the SDK stops a running `receive_batch`."""
    stop.wait()
    client.close()


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM (container stop) and SIGINT ask for a clean stop; a second one stops at once."""

    def handle(number: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.warning("%s: stopping after the current batch", signal.Signals(number).name)
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may install handlers; an embedding program stops us itself
        return
    previous = {number: signal.signal(number, handle) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
