"""Sending message files to an Event Hub: the smoke test after a deployment.

Message files (as `replay` reads them) go to the hub in size-checked batches; the
SDK does the size accounting. The producer client is made by a factory so tests
can put a fake in its place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from azure.eventhub import EventData, EventDataBatch

from shared.core.message import Message

from .hub import SERVICE_ERRORS, Hub, describe_error


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
