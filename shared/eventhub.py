"""`python -m shared send` and `python -m shared consume`: bindwatch against a real Event Hub, without Functions.

`send` is the smoke test after a deployment: message files (as `replay` reads
them) go to the hub in size-checked batches. `consume` runs the Functions
pipeline as a plain process with blob checkpoints, for teams that run
containers; like the Functions host it checkpoints only after a batch was
processed, so delivery is at-least-once and the store's idempotent writes absorb
the repeats. The Event Hubs clients are made by factories so tests can put fakes
in their place; nothing else is mocked.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import Any, Protocol

from azure.core.exceptions import AzureError
from azure.eventhub import EventData, EventDataBatch
from azure.eventhub.exceptions import EventHubError

from .deadletter import DeadLetter
from .pipeline import Pipeline
from .record import Message, Origin
from .replay import check_paths, messages_from
from .settings import ConfigurationError, Settings
from .store import MemoryStore
from .telemetry import log_event

log = logging.getLogger("bindwatch.eventhub")

DEFAULT_CHECKPOINT_CONTAINER = "bindwatch-checkpoints"
START_POSITIONS = {"earliest": "-1", "latest": "@latest"}  # the SDK's names for "from the start" and "only new"
SERVICE_ERRORS = (AzureError, EventHubError)  # what a hub or storage account that says no raises


# ---------------------------------------------------------------------------------------------- where to


@dataclass(frozen=True)
class Hub:
    namespace: str  # <name>.servicebus.windows.net
    name: str


@dataclass(frozen=True)
class CheckpointLocation:
    """A blob container for checkpoints and partition ownership: by URL (Entra ID) or by connection string."""

    container: str
    account_url: str | None = None
    connection: str | None = field(default=None, repr=False)  # may hold a key: never logged

    def describe(self) -> str:
        where = self.account_url or "the account in the storage connection string"
        return f"container {self.container} in {where}"


def hub_from(args: argparse.Namespace, settings: Settings) -> Hub:
    """The namespace and hub from the arguments, else from the app settings the Function App uses."""
    namespace = args.namespace or settings.eventhub_namespace
    if not namespace:
        raise ConfigurationError(
            "no Event Hubs namespace: pass --namespace or set EventHubConnection__fullyQualifiedNamespace"
        )
    return Hub(_bare_host(namespace), args.hub or settings.eventhub_name)


def _bare_host(namespace: str) -> str:
    """Accept what people paste (sb://, https://, a trailing slash); the SDK wants the host name only."""
    host = namespace.strip()
    for scheme in ("sb://", "https://", "amqps://"):
        host = host.removeprefix(scheme)
    return host.rstrip("/")


def checkpoint_location(args: argparse.Namespace, settings: Settings) -> CheckpointLocation:
    """The state account first (bindwatch's own), then the host's, as the Function App's settings name them."""
    container = args.checkpoint_container
    if args.checkpoint_account_url:
        return CheckpointLocation(container, account_url=args.checkpoint_account_url)
    if settings.state_blob_uri:
        return CheckpointLocation(container, account_url=settings.state_blob_uri)
    if settings.state_connection:
        return CheckpointLocation(container, connection=settings.state_connection.get_secret_value())
    if settings.host_blob_uri:
        return CheckpointLocation(container, account_url=settings.host_blob_uri)
    if settings.host_storage_account:
        return CheckpointLocation(
            container, account_url=f"https://{settings.host_storage_account}.blob.core.windows.net"
        )
    if settings.host_storage:
        return CheckpointLocation(container, connection=settings.host_storage.get_secret_value())
    raise ConfigurationError(
        "no storage for checkpoints: pass --checkpoint-account-url or set STATE_BLOB_SERVICE_URI, "
        "STATE_STORAGE_CONNECTION, AzureWebJobsStorage__blobServiceUri, AzureWebJobsStorage__accountName "
        "or AzureWebJobsStorage"
    )


# ---------------------------------------------------------------------------------------------- send


class Producer(Protocol):
    """The part of `EventHubProducerClient` that `send` uses."""

    def create_batch(self) -> EventDataBatch: ...

    def send_batch(self, batch: EventDataBatch) -> None: ...

    def close(self) -> None: ...


ProducerFactory = Callable[[Hub], Producer]


@dataclass
class SendReport:
    """What reached the hub, and every message that did not (by file and line)."""

    messages: int = 0
    batches: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self, hub: Hub) -> str:
        text = (
            f"sent {self.messages} messages ({self.bytes} bytes of bodies) in {self.batches} batches "
            f"to {hub.name} on {hub.namespace}"
        )
        return text + (f"; {len(self.errors)} failed" if self.errors else "")


class _Sender:
    """Fills SDK batches until `add` says full, then sends; counts only what the hub accepted."""

    def __init__(self, producer: Producer, report: SendReport) -> None:
        self.producer = producer
        self.report = report
        self.batch = producer.create_batch()
        self.pending: list[Message] = []

    def add(self, message: Message) -> None:
        if self._try_add(message):
            return
        if self.pending:
            self.flush()
            if self._try_add(message):
                return
        limit = self.batch.max_size_in_bytes
        self.report.errors.append(
            f"{message.origin.describe()}: {len(message.body)} bytes does not fit in one batch ({limit} bytes)"
        )

    def _try_add(self, message: Message) -> bool:
        try:
            self.batch.add(EventData(message.body))
        except ValueError:  # the SDK's signal that the batch is full
            return False
        self.pending.append(message)
        return True

    def flush(self) -> None:
        """Send what is pending; a failure propagates (the rest would fail the same way)."""
        if not self.pending:
            return
        self.producer.send_batch(self.batch)
        self.report.batches += 1
        self.report.messages += len(self.pending)
        self.report.bytes += sum(len(m.body) for m in self.pending)
        self.batch = self.producer.create_batch()
        self.pending = []


def send_messages(producer: Producer, messages: Iterable[Message]) -> SendReport:
    """Send every message as one event, in as few batches as the hub's size limit allows."""
    report = SendReport()
    try:
        sender = _Sender(producer, report)  # create_batch() opens the connection: the first place to fail
        for message in messages:
            sender.add(message)
        sender.flush()
    except SERVICE_ERRORS as error:  # the rest would be refused the same way
        report.errors.append(f"sending stopped after {report.messages} messages: {describe_error(error)}")
    if not report.messages and not report.errors:
        report.errors.append("no messages in the given paths")
    return report


def open_producer(hub: Hub) -> Producer:
    """The real client, with the signed-in identity (az login, managed identity, environment)."""
    from azure.eventhub import EventHubProducerClient
    from azure.identity import DefaultAzureCredential

    return EventHubProducerClient(
        fully_qualified_namespace=hub.namespace, eventhub_name=hub.name, credential=DefaultAzureCredential()
    )


def add_send_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("send", help="send message files to an Event Hub (the smoke test)")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="JSON-lines file, one-body file, directory or -")
    _add_hub_arguments(parser)
    return parser


def run_send(args: argparse.Namespace, settings: Settings, producer_factory: ProducerFactory | None = None) -> int:
    """Send the files; the summary goes to standard error, and any failure makes the exit non-zero."""
    paths = check_paths(args.paths)
    hub = hub_from(args, settings)
    producer = (producer_factory or open_producer)(hub)
    try:
        report = send_messages(producer, messages_from(paths))
    finally:
        producer.close()
    for error in report.errors:
        print(f"bindwatch: {error}", file=sys.stderr)
    print(f"bindwatch: {report.summary(hub)}", file=sys.stderr)
    return 1 if report.errors else 0


# ---------------------------------------------------------------------------------------------- consume


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
        self.dead_letter.write(outcome.rejections)

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


def add_consume_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("consume", help="run the pipeline as a standalone Event Hub consumer")
    _add_hub_arguments(parser)
    parser.add_argument("--consumer-group", help="default: SIGNIN_EVENTHUB_CONSUMER_GROUP")
    parser.add_argument(
        "--checkpoint-container", default=DEFAULT_CHECKPOINT_CONTAINER, help="blob container for checkpoints"
    )
    parser.add_argument(
        "--checkpoint-account-url", help="blob service URL; default: from the STATE_*/AzureWebJobsStorage settings"
    )
    parser.add_argument("--batch", type=_positive_int, default=100, help="most events per batch")
    parser.add_argument("--max-wait", type=_positive_float, default=5.0, help="seconds to wait to fill a batch")
    parser.add_argument("--tick-seconds", type=_positive_float, default=60.0, help="settle this often while quiet")
    parser.add_argument(
        "--start",
        choices=sorted(START_POSITIONS),
        default="earliest",
        help="where a partition without a checkpoint starts",
    )
    return parser


def run_consume(
    args: argparse.Namespace,
    settings: Settings,
    pipeline_factory: Callable[[], Pipeline] | None = None,
    client_factory: ClientFactory | None = None,
    dead_letter_factory: Callable[[], DeadLetter] | None = None,
) -> int:
    """Consume until SIGTERM or SIGINT (0), or until the service refuses us (1). Defaults: the function's own."""
    from . import host  # imports azure.functions: only the consumer needs it

    target = ConsumeTarget(
        hub_from(args, settings),
        args.consumer_group or settings.eventhub_consumer_group,
        checkpoint_location(args, settings),
    )
    logging.getLogger("bindwatch").setLevel(logging.INFO)  # the structured events are the consumer's output
    pipeline = (pipeline_factory or host.pipeline)()
    if isinstance(pipeline.store, MemoryStore):
        log.warning("sign-ins are kept in memory: a restart forgets the open ones while the checkpoints stay")
    consumer = Consumer(pipeline, host.report_and_send, (dead_letter_factory or host.dead_letter)(), args.tick_seconds)
    client = (client_factory or open_consumer)(target)
    log.warning(
        "consuming %s on %s as %s; checkpoints in %s",
        target.hub.name,
        target.hub.namespace,
        target.consumer_group,
        target.checkpoints.describe(),
    )
    return _receive(client, consumer, args)


def _receive(client: ConsumerClient, consumer: Consumer, args: argparse.Namespace) -> int:
    stop = consumer.stopping
    closer = threading.Thread(target=_close_when, args=(stop, client), name="bindwatch-close", daemon=True)
    closer.start()
    try:
        with _stop_on_signals(stop):
            client.receive_batch(
                on_event_batch=consumer.on_event_batch,
                on_error=consumer.on_error,
                max_batch_size=args.batch,
                max_wait_time=args.max_wait,
                starting_position=START_POSITIONS[args.start],
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


# ---------------------------------------------------------------------------------------------- shared bits


def _add_hub_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--namespace", help="<name>.servicebus.windows.net; default: EventHubConnection__fullyQualifiedNamespace"
    )
    parser.add_argument("--hub", help="Event Hub name; default: SIGNIN_EVENTHUB_NAME")


_SECRET = re.compile(r"(?i)\b(sig|se|skoid|AccountKey|SharedAccessKey|SharedAccessSignature)=[^;&\s]+")


def log_reason(error: BaseException) -> str:
    """For the logs: the type, HTTP status and service error code only (SDK messages can carry account URLs)."""
    status = getattr(error, "status_code", None)
    code = getattr(error, "error_code", None)
    return type(error).__name__ + (f" (HTTP {status})" if status else "") + (f" {code}" if code else "")


def describe_error(error: BaseException) -> str:
    """For the person at the terminal: the SDK's message names the claim or resource refused; keys and SAS masked."""
    text = " ".join(str(error).split())[:1000]
    text = _SECRET.sub(lambda match: f"{match.group(1)}=***", text)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return value
