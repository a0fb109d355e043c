"""`send` and `consume` wired to fake Event Hubs clients: the SDK's own EventData and batches, no network.

Only the service is faked: producer and consumer clients that record what the code asked
of them. Batches are real `EventDataBatch`es (the SDK does the size accounting), received
events are built the way the SDK's receive path builds them, and the pipeline is the real
one over a MemoryStore.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
from azure.eventhub import EventData, EventDataBatch, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub._pyamqp.message import Message as AmqpMessage
from azure.eventhub.exceptions import ConnectError, EventHubError
from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore
from azure.storage.blob import BlobServiceClient

from shared.app.service import IngestService
from shared.cli import eventhub
from shared.core.clock import FixedClock
from shared.core.message import Message
from shared.core.rejection import Rejection
from shared.eventhub.consume import CheckpointLocation, Consumer, ConsumeTarget, open_consumer
from shared.eventhub.hub import Hub, describe_error
from shared.eventhub.send import open_producer, send_messages
from shared.functions.worker import WORKER
from shared.ingest.files import messages_from
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Outcome, Pipeline
from shared.settings import ConfigurationError, Settings, current_settings
from shared.synth.records import BASE_TIME, body, record
from tests.support.state import table_store

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "evhns-test.servicebus.windows.net"
ACCOUNT_KEY = "A" * 86 + "=="
CONNECTION = (
    f"DefaultEndpointsProtocol=https;AccountName=stconn;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"
)


@pytest.fixture(autouse=True)
def _no_hub_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("EventHubConnection", "SIGNIN_EVENTHUB", "AZURE_")):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _signals_caught() -> Iterator[list[int]]:
    """If the code under test forgot its handlers, a test's signal is recorded here instead of ending pytest."""
    caught: list[int] = []
    previous = {
        n: signal.signal(n, lambda number, frame: caught.append(number)) for n in (signal.SIGTERM, signal.SIGINT)
    }
    yield caught
    for number, handler in previous.items():
        signal.signal(number, handler)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    eventhub.add_send_parser(commands)
    eventhub.add_consume_parser(commands)
    return parser.parse_args(list(argv))


# ------------------------------------------------------------------------------------------- fakes


class RecordingBatch(EventDataBatch):
    """A real batch (the SDK decides when it is full) that remembers the bodies it took."""

    def __init__(self, max_size_in_bytes: int) -> None:
        super().__init__(max_size_in_bytes=max_size_in_bytes)
        self.bodies: list[bytes] = []

    def add(self, event_data: Any) -> None:
        super().add(event_data)
        self.bodies.append(b"".join(event_data.body))


class FakeProducer:
    """Stands in for EventHubProducerClient: hands out batches of `limit` bytes and records what was sent."""

    def __init__(self, limit: int = 1_046_528, refuse_after: int | None = None, unreachable: bool = False) -> None:
        self.limit = limit
        self.refuse_after = refuse_after
        self.unreachable = unreachable
        self.sent: list[RecordingBatch] = []
        self.closed = False

    def create_batch(self) -> RecordingBatch:
        if self.unreachable:  # the real client connects here to learn the hub's size limit
            raise ConnectError("Failed to initiate the connection due to exception: Name or service not known")
        return RecordingBatch(self.limit)

    def send_batch(self, batch: RecordingBatch) -> None:
        if self.refuse_after is not None and len(self.sent) >= self.refuse_after:
            raise EventHubError("Unauthorized access. 'Send' claim(s) are required to perform this operation.")
        self.sent.append(batch)

    def close(self) -> None:
        self.closed = True


class FakeContext:
    """Stands in for PartitionContext: records checkpoints into the shared journal."""

    def __init__(self, partition_id: str, journal: list[tuple[Any, ...]]) -> None:
        self.partition_id = partition_id
        self.journal = journal

    def update_checkpoint(self, event: EventData | None = None, **kwargs: Any) -> None:
        assert event is not None
        self.journal.append(("checkpoint", self.partition_id, event.sequence_number, event.offset))


class JournalPipeline(Pipeline):
    """The real pipeline, noting each call in the journal so the order against checkpoints can be checked."""

    def __init__(self, journal: list[tuple[Any, ...]], store: MemoryStore | None = None, **kwargs: Any) -> None:
        super().__init__(store or MemoryStore(), 600.0, **kwargs)
        self.journal = journal
        self.messages: list[Message] = []

    def ingest(self, messages: Any) -> Outcome:
        batch = list(messages)
        self.journal.append(("ingest", len(batch)))
        outcome = super().ingest(batch)
        self.messages.extend(batch)
        return outcome

    def tick(self) -> Outcome:
        self.journal.append(("tick",))
        return super().tick()


class KeptRejections:
    """Stands in for the dead-letter blob container in the unit tests (the Azurite test uses the real one)."""

    def __init__(self, journal: list[tuple[Any, ...]]) -> None:
        self.journal = journal
        self.kept: list[Rejection] = []

    def write(self, rejections: Sequence[Rejection]) -> str | None:
        self.journal.append(("dead_letter", len(rejections)))
        self.kept.extend(rejections)
        return None


class BrokenStore(MemoryStore):
    """A state store whose account is down."""

    def merge(self, requests: Any, clock: float, batch: str | None = None) -> Any:
        raise ConnectionError("table service unavailable")


def received(data: bytes, sequence_number: int, enqueued_ms: int = 1_773_129_600_000) -> EventData:
    """An EventData as the SDK's receive path makes it (`EventData._from_message`), with service annotations."""
    message = AmqpMessage(
        data=[data],
        message_annotations={
            b"x-opt-sequence-number": sequence_number,
            b"x-opt-offset": str(4096 * sequence_number).encode(),
            b"x-opt-enqueued-time": enqueued_ms,
        },
    )
    return EventData._from_message(message)


def signin_body(correlation_id: str, minutes: int = 0) -> bytes:
    return body([record(correlation_id=correlation_id, at=BASE_TIME + timedelta(minutes=minutes))])


# ------------------------------------------------------------------------------------------- send


def jsonl(path: Path, bodies: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(bodies) + b"\n")
    return path


def test_send_splits_into_batches_under_the_size_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bodies = [signin_body(f"corr-{i}") for i in range(12)]
    limit = 3 * len(bodies[0]) + 200  # room for three bodies and the batch's own overhead
    producer = FakeProducer(limit=limit)
    path = jsonl(tmp_path / "signins.jsonl", bodies)

    code = eventhub.run_send(parse("send", str(path), "--namespace", NAMESPACE), settings(), lambda hub: producer)

    assert code == 0
    assert len(producer.sent) >= 4
    assert all(batch.size_in_bytes <= limit for batch in producer.sent)
    assert [b for batch in producer.sent for b in batch.bodies] == bodies  # each line one event, in order
    assert producer.closed
    err = capsys.readouterr().err
    total = sum(len(b) for b in bodies)
    assert f"sent 12 messages ({total} bytes of bodies) in {len(producer.sent)} batches" in err
    assert f"insights-logs-signinlogs on {NAMESPACE}" in err


def test_send_reports_a_body_larger_than_a_batch_by_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = signin_body("small")
    huge = body([record(correlation_id="huge", user="x" * 5000)])
    path = jsonl(tmp_path / "mixed.jsonl", [small, huge, small])
    producer = FakeProducer(limit=len(huge) // 2)

    code = eventhub.run_send(parse("send", str(path), "--namespace", NAMESPACE), settings(), lambda hub: producer)

    assert code == 1
    assert [b for batch in producer.sent for b in batch.bodies] == [small, small]
    err = capsys.readouterr().err
    assert f"{path}:2: {len(huge)} bytes does not fit in one batch ({len(huge) // 2} bytes)" in err
    assert "sent 2 messages" in err
    assert "1 failed" in err


def test_send_takes_a_one_body_file_as_one_event_and_walks_directories(tmp_path: Path) -> None:
    pretty = json.dumps({"records": [record(correlation_id="pretty")]}, indent=2).encode()
    (tmp_path / "a-pretty.json").write_bytes(pretty)
    lines = [signin_body("one"), signin_body("two")]
    jsonl(tmp_path / "b.jsonl", lines)
    producer = FakeProducer()

    code = eventhub.run_send(parse("send", str(tmp_path), "--namespace", NAMESPACE), settings(), lambda hub: producer)

    assert code == 0
    assert [b for batch in producer.sent for b in batch.bodies] == [pretty, *lines]
    assert len(producer.sent) == 1


def test_send_the_samples_at_the_standard_tier_limit() -> None:
    producer = FakeProducer()
    report = send_messages(producer, messages_from([str(ROOT / "samples")]))

    lines = sum(1 for f in (ROOT / "samples").glob("*.jsonl") for line in f.read_bytes().splitlines() if line.strip())
    assert report.errors == []
    assert report.messages == lines + 1  # plus the one pretty-printed body of 03-hazards.json
    assert report.batches == len(producer.sent) > 1
    assert all(batch.size_in_bytes <= producer.limit for batch in producer.sent)


def test_send_stops_and_fails_when_the_hub_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bodies = [signin_body(f"corr-{i}") for i in range(6)]
    producer = FakeProducer(limit=2 * len(bodies[0]) + 200, refuse_after=1)
    path = jsonl(tmp_path / "signins.jsonl", bodies)

    code = eventhub.run_send(parse("send", str(path), "--namespace", NAMESPACE), settings(), lambda hub: producer)

    assert code == 1
    assert len(producer.sent) == 1
    assert producer.closed
    err = capsys.readouterr().err
    assert "sending stopped after 2 messages: EventHubError: Unauthorized access. 'Send' claim(s)" in err
    assert "sent 2 messages" in err


def test_send_fails_cleanly_when_the_namespace_cannot_be_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = jsonl(tmp_path / "one.jsonl", [signin_body("one")])
    producer = FakeProducer(unreachable=True)

    code = eventhub.run_send(parse("send", str(path), "--namespace", NAMESPACE), settings(), lambda hub: producer)

    assert code == 1
    assert producer.closed
    err = capsys.readouterr().err
    assert "sending stopped after 0 messages: ConnectError: Failed to initiate the connection" in err


def test_send_with_nothing_to_send_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.jsonl").write_text("\n\n")
    code = eventhub.run_send(
        parse("send", str(tmp_path), "--namespace", NAMESPACE), settings(), lambda hub: FakeProducer()
    )
    assert code == 1
    assert "no messages in the given paths" in capsys.readouterr().err


def test_send_takes_the_hub_from_arguments_else_from_settings(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "one.jsonl", [signin_body("one")])
    hubs: list[Hub] = []

    def factory(hub: Hub) -> FakeProducer:
        hubs.append(hub)
        return FakeProducer()

    configured = settings(EventHubConnection__fullyQualifiedNamespace="evhns-set.servicebus.windows.net")
    eventhub.run_send(parse("send", str(path)), configured, factory)
    eventhub.run_send(
        parse("send", str(path), "--namespace", f"sb://{NAMESPACE}/", "--hub", "other"), configured, factory
    )

    assert hubs == [Hub("evhns-set.servicebus.windows.net", "insights-logs-signinlogs"), Hub(NAMESPACE, "other")]
    with pytest.raises(ConfigurationError, match="EventHubConnection__fullyQualifiedNamespace"):
        eventhub.run_send(parse("send", str(path)), settings(), factory)


def test_the_default_producer_is_the_sdk_client() -> None:
    producer = open_producer(Hub(NAMESPACE, "insights-logs-signinlogs"))
    try:
        assert isinstance(producer, EventHubProducerClient)
        assert producer.eventhub_name == "insights-logs-signinlogs"
    finally:
        producer.close()


# ------------------------------------------------------------------------------------------- consume callbacks


def test_consumer_judges_events_with_their_origin_then_checkpoints() -> None:
    journal: list[tuple[Any, ...]] = []
    pipeline = JournalPipeline(journal)
    reported: list[Outcome] = []
    kept = KeptRejections(journal)
    consumer = Consumer(pipeline, reported.append, kept)
    data = signin_body("a")
    events = [received(data, 41), received(b"not json", 42)]

    consumer.on_event_batch(FakeContext("3", journal), events)

    assert journal == [("ingest", 2), ("dead_letter", 1), ("checkpoint", "3", 42, str(4096 * 42))]
    first = pipeline.messages[0]
    assert first.body == data
    assert (first.origin.source, first.origin.partition, first.origin.offset) == ("eventhub", "3", str(4096 * 41))
    assert first.origin.sequence_number == 41
    assert first.origin.enqueued_time == 1_773_129_600.0
    [outcome] = reported
    assert outcome.tally.messages == 2
    assert outcome.tally.signins == 1
    [rejection] = kept.kept  # the bad body carries its partition and sequence to the dead-letter trail
    assert (rejection.origin.partition, rejection.origin.sequence_number, rejection.raw) == ("3", 42, b"not json")
    assert outcome.rejections == [rejection]


def test_consumer_does_not_checkpoint_when_processing_fails(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bindwatch")
    journal: list[tuple[Any, ...]] = []
    consumer = Consumer(JournalPipeline(journal, store=BrokenStore()), lambda outcome: None, KeptRejections(journal))

    with pytest.raises(ConnectionError):  # the SDK closes the partition and reads it again from the checkpoint
        consumer.on_event_batch(
            FakeContext("1", journal), [received(signin_body("a"), 7), received(signin_body("b"), 8)]
        )

    assert journal == [("ingest", 2)]
    [failure] = [json.loads(r.getMessage().removeprefix("BINDWATCH ")) for r in caplog.records]
    assert failure == {
        "event": "consume_failed",
        "partition": "1",
        "first_sequence_number": 7,
        "last_sequence_number": 8,
        "error": "ConnectionError",  # the type only: SDK messages can carry account URLs
    }


def test_consumer_does_not_checkpoint_when_the_dead_letter_write_fails() -> None:
    class Unwritable(KeptRejections):
        def write(self, rejections: Sequence[Rejection]) -> str | None:
            super().write(rejections)
            raise ResourceNotFoundError("container gone")

    journal: list[tuple[Any, ...]] = []
    consumer = Consumer(JournalPipeline(journal), lambda outcome: None, Unwritable(journal))

    with pytest.raises(ResourceNotFoundError):
        consumer.on_event_batch(FakeContext("1", journal), [received(b"broken", 3)])

    assert journal == [("ingest", 1), ("dead_letter", 1)]  # read again from the old checkpoint, rejection kept then


def test_consumer_ticks_on_quiet_batches_once_per_interval() -> None:
    journal: list[tuple[Any, ...]] = []
    wall = FixedClock(BASE_TIME.timestamp() + 30)
    pipeline = JournalPipeline(journal, wall=wall)
    reported: list[Outcome] = []
    now = [0.0]
    consumer = Consumer(pipeline, reported.append, KeptRejections(journal), tick_seconds=60.0, monotonic=lambda: now[0])
    context = FakeContext("0", journal)

    consumer.on_event_batch(context, [received(signin_body("quiet"), 1)])
    now[0], wall.at = 30.0, wall.at + 30
    consumer.on_event_batch(context, [])  # too soon after the last batch
    assert ("tick",) not in journal

    now[0], wall.at = 61.0, wall.at + 660  # past the settle window, and a tick interval since the batch
    consumer.on_event_batch(context, [])
    consumer.on_event_batch(context, [])  # same instant: no second tick

    assert journal.count(("tick",)) == 1
    verdicts = [line for line in reported[-1].lines if line.get("type") == "verdict"]
    assert [v["correlation_id"] for v in verdicts] == ["quiet"]


def test_a_failing_tick_is_logged_and_retried_next_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bindwatch")

    class FlakyClockStore(MemoryStore):
        calls = 0

        def load_clock(self) -> Any:
            FlakyClockStore.calls += 1
            if FlakyClockStore.calls == 1:
                raise TimeoutError("read timed out")
            return super().load_clock()

    journal: list[tuple[Any, ...]] = []
    now = [0.0]
    consumer = Consumer(
        JournalPipeline(journal, store=FlakyClockStore()), lambda o: None, KeptRejections(journal), 60.0, lambda: now[0]
    )

    now[0] = 100.0
    consumer.on_event_batch(FakeContext("0", journal), [])  # must not raise into the SDK
    now[0] = 200.0
    consumer.on_event_batch(FakeContext("0", journal), [])

    assert journal == [("tick",), ("tick",)]
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ['BINDWATCH {"event":"tick_failed","error":"TimeoutError"}']


def test_consumer_errors_are_logged_by_type_and_status(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bindwatch")
    consumer = Consumer(JournalPipeline([]), lambda o: None, KeptRejections([]))
    missing = ResourceNotFoundError(f"no container at https://stx.blob.core.windows.net/c?sig={ACCOUNT_KEY}")
    missing.status_code = 404

    consumer.on_error(FakeContext("2", []), missing)
    consumer.on_error(None, EventHubError("ownership claim failed"))
    consumer.stopping.set()
    consumer.on_error(None, ConnectError("connection closed"))  # shutting down: expected, not a warning

    events = [json.loads(r.getMessage().removeprefix("BINDWATCH ")) for r in caplog.records]
    assert events == [
        {"event": "consumer_error", "partition": "2", "error": "ResourceNotFoundError (HTTP 404)"},
        {"event": "consumer_error", "partition": None, "error": "EventHubError"},
        {"event": "consumer_error", "partition": None, "error": "ConnectError"},
    ]
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.WARNING, logging.INFO]


def test_errors_shown_at_the_terminal_mask_keys_and_signatures() -> None:
    error = ClientAuthenticationError(f"refused for AccountKey={ACCOUNT_KEY}; url ...?sv=2024&sig=abc%2Fdef&se=2026")
    text = describe_error(error)
    assert ACCOUNT_KEY not in text and "abc%2Fdef" not in text
    assert text == "ClientAuthenticationError: refused for AccountKey=***; url ...?sv=2024&sig=***&se=***"


# ------------------------------------------------------------------------------------------- consume run


class FakeConsumerClient:
    """Stands in for EventHubConsumerClient: runs `script` with the callbacks, then, like the SDK, keeps
    receiving until another thread calls close()."""

    def __init__(self, script: Callable[[Callable[..., None], dict[str, Any]], None]) -> None:
        self.script = script
        self.kwargs: dict[str, Any] = {}
        self.closed = False
        self._closing = __import__("threading").Event()

    def receive_batch(self, on_event_batch: Callable[..., None], **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.script(on_event_batch, kwargs)
        if not self._closing.wait(10):
            raise AssertionError("close() was never called")

    def close(self) -> None:
        self.closed = True
        self._closing.set()


CONSUME_SETTINGS = {
    "EventHubConnection__fullyQualifiedNamespace": NAMESPACE,
    "STATE_BLOB_SERVICE_URI": "https://ststate.blob.core.windows.net",
}


def test_consume_runs_until_sigterm_and_checkpoints_what_it_processed() -> None:
    journal: list[tuple[Any, ...]] = []
    pipeline = JournalPipeline(journal)
    targets: list[ConsumeTarget] = []

    def script(on_event_batch: Callable[..., None], kwargs: dict[str, Any]) -> None:
        on_event_batch(FakeContext("0", journal), [received(signin_body("a"), 5), received(signin_body("b"), 6)])
        on_event_batch(FakeContext("1", journal), [received(signin_body("c"), 9)])
        os.kill(os.getpid(), signal.SIGTERM)

    client = FakeConsumerClient(script)
    before = signal.getsignal(signal.SIGTERM)

    def factory(target: ConsumeTarget) -> FakeConsumerClient:
        targets.append(target)
        return client

    code = eventhub.run_consume(
        parse("consume"), settings(**CONSUME_SETTINGS), service(pipeline, KeptRejections(journal)), factory
    )

    assert code == 0
    assert client.closed
    assert signal.getsignal(signal.SIGTERM) is before
    assert journal == [
        ("ingest", 2),
        ("dead_letter", 0),
        ("checkpoint", "0", 6, str(4096 * 6)),
        ("ingest", 1),
        ("dead_letter", 0),
        ("checkpoint", "1", 9, str(4096 * 9)),
    ]
    assert targets == [
        ConsumeTarget(
            Hub(NAMESPACE, "insights-logs-signinlogs"),
            "bindwatch",
            CheckpointLocation("bindwatch-checkpoints", account_url="https://ststate.blob.core.windows.net"),
        )
    ]
    kwargs = client.kwargs
    assert (kwargs["max_batch_size"], kwargs["max_wait_time"], kwargs["starting_position"]) == (100, 5.0, "-1")
    assert callable(kwargs["on_error"])


def service(pipeline: Pipeline, kept: KeptRejections) -> Callable[[Settings], IngestService]:
    """The consumer's service over a test pipeline and dead letter, with no destination."""
    return lambda _settings: IngestService(pipeline, kept)


def consume_quietly(client_factory: Callable[[Any], Any], args: Any = None) -> int:
    """`consume` with the standard test settings, a journal pipeline and no rejections kept."""
    return eventhub.run_consume(
        args or parse("consume"),
        settings(**CONSUME_SETTINGS),
        service(JournalPipeline([]), KeptRejections([])),
        client_factory,
    )


def test_consume_reports_through_the_host_reporter(caplog: pytest.LogCaptureFixture) -> None:
    def script(on_event_batch: Callable[..., None], kwargs: dict[str, Any]) -> None:
        on_event_batch(FakeContext("0", []), [received(b"{}", 1)])
        os.kill(os.getpid(), signal.SIGINT)

    client = FakeConsumerClient(script)
    code = consume_quietly(lambda target: client)

    assert code == 0
    events = [json.loads(r.getMessage().removeprefix("BINDWATCH ")) for r in caplog.records if r.name == "bindwatch"]
    assert [e["event"] for e in events] == ["batch", "rejected"]
    assert events[1] == {
        "event": "rejected",
        "reason": "message has no 'records' list and is not one sign-in record",
        "partition": "0",
        "offset": "4096",
        "sequence_number": 1,
        "record_index": None,
    }


def test_consume_options_reach_receive_batch() -> None:
    def script(on_event_batch: Callable[..., None], kwargs: dict[str, Any]) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    client = FakeConsumerClient(script)
    args = parse("consume", "--batch", "25", "--max-wait", "2.5", "--start", "latest", "--consumer-group", "cg2")
    targets: list[ConsumeTarget] = []
    code = consume_quietly(lambda t: targets.append(t) or client, args)

    assert code == 0

    assert (client.kwargs["max_batch_size"], client.kwargs["max_wait_time"]) == (25, 2.5)
    assert client.kwargs["starting_position"] == "@latest"
    assert targets[0].consumer_group == "cg2"


def test_a_second_signal_stops_at_once() -> None:
    def script(on_event_batch: Callable[..., None], kwargs: dict[str, Any]) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)

    client = FakeConsumerClient(script)
    code = consume_quietly(lambda target: client)
    assert code == 130
    assert client.closed


def test_consume_fails_when_the_service_refuses_or_receiving_ends(capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(on_event_batch: Callable[..., None], kwargs: dict[str, Any]) -> None:
        raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    refused = FakeConsumerClient(refuse)
    code = consume_quietly(lambda target: refused)
    assert code == 1
    assert refused.closed
    assert "consuming stopped: ClientAuthenticationError: DefaultAzureCredential failed" in capsys.readouterr().err

    class EndsByItself(FakeConsumerClient):
        def receive_batch(self, on_event_batch: Callable[..., None], **kwargs: Any) -> None:
            return None

    code = consume_quietly(lambda t: EndsByItself(refuse))
    assert code == 1
    assert "without a stop signal" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("values", "argv", "expected"),
    [
        (
            {"STATE_BLOB_SERVICE_URI": "https://a.blob.core.windows.net"},
            [],
            {"account_url": "https://a.blob.core.windows.net"},
        ),
        ({"STATE_STORAGE_CONNECTION": CONNECTION}, [], {"connection": CONNECTION}),
        (
            {"AzureWebJobsStorage__blobServiceUri": "https://h.blob.core.windows.net"},
            [],
            {"account_url": "https://h.blob.core.windows.net"},
        ),
        ({"AzureWebJobsStorage__accountName": "sthost"}, [], {"account_url": "https://sthost.blob.core.windows.net"}),
        ({"AzureWebJobsStorage": CONNECTION}, [], {"connection": CONNECTION}),
        (
            {"STATE_STORAGE_CONNECTION": CONNECTION},
            ["--checkpoint-account-url", "https://x.blob.core.windows.net", "--checkpoint-container", "ck"],
            {"account_url": "https://x.blob.core.windows.net", "container": "ck"},
        ),
    ],
)
def test_checkpoint_location_follows_the_storage_settings(
    values: dict[str, str], argv: list[str], expected: dict[str, str]
) -> None:
    location = eventhub.checkpoint_location(parse("consume", *argv), settings(**values))
    assert location == CheckpointLocation(**{"container": "bindwatch-checkpoints", **expected})
    assert ACCOUNT_KEY not in repr(location) and ACCOUNT_KEY not in location.describe()


def test_consume_without_checkpoint_storage_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="STATE_BLOB_SERVICE_URI"):
        eventhub.run_consume(
            parse("consume"),
            settings(EventHubConnection__fullyQualifiedNamespace=NAMESPACE),
            service(JournalPipeline([]), KeptRejections([])),
            lambda target: FakeConsumerClient(lambda *a: None),
        )


@pytest.mark.parametrize(
    ("location", "url"),
    [
        (
            CheckpointLocation("ckpt", account_url="https://stacct.blob.core.windows.net"),
            "https://stacct.blob.core.windows.net/ckpt",
        ),
        (CheckpointLocation("ckpt", connection=CONNECTION), "https://stconn.blob.core.windows.net/ckpt"),
    ],
)
def test_the_default_consumer_is_the_sdk_client_with_a_blob_checkpoint_store(
    location: CheckpointLocation, url: str
) -> None:
    client = open_consumer(ConsumeTarget(Hub(NAMESPACE, "hub1"), "cg1", location))
    try:
        assert isinstance(client, EventHubConsumerClient)
        assert client.eventhub_name == "hub1"
        assert client._consumer_group == "cg1"
        store = client._checkpoint_store
        assert isinstance(store, BlobCheckpointStore)
        assert store._container_client.url == url
    finally:
        client.close()


# ------------------------------------------------------------------------------------------- the real wiring


@pytest.fixture
def app_storage(storage_connection: str, table_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app settings point at Azurite, as a container's AzureWebJobsStorage would point at an account."""
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection)
    monkeypatch.setenv("EventHubConnection__fullyQualifiedNamespace", NAMESPACE)
    monkeypatch.setenv("STATE_TABLE_PREFIX", table_prefix)
    monkeypatch.setenv("REJECTED_CONTAINER", table_prefix)
    current_settings.cache_clear()
    WORKER.reset()
    yield table_prefix
    WORKER.reset()
    current_settings.cache_clear()


def test_consume_with_the_function_defaults_keeps_state_in_tables_and_rejections_in_blobs(
    app_storage: str, storage_connection: str
) -> None:
    """Only Event Hubs is faked: the pipeline, Table store and dead-letter container are the function's own."""
    journal: list[tuple[Any, ...]] = []
    good = body([record(correlation_id="c1"), record(correlation_id="c2", status="unbound", code=1003)])
    broken = b'{"records": [42]} trailing'

    def script(on_event_batch: Callable[..., None], kwargs: dict[str, Any]) -> None:
        on_event_batch(FakeContext("2", journal), [received(good, 30), received(broken, 31)])
        os.kill(os.getpid(), signal.SIGTERM)

    client = FakeConsumerClient(script)
    targets: list[ConsumeTarget] = []
    code = eventhub.run_consume(
        parse("consume"), current_settings(), client_factory=lambda t: targets.append(t) or client
    )

    assert code == 0
    assert journal == [("checkpoint", "2", 31, str(4096 * 31))]
    assert targets[0].checkpoints == CheckpointLocation("bindwatch-checkpoints", connection=storage_connection)
    store = table_store(storage_connection, app_storage)
    assert sorted(signin.correlation_id for signin in store.signins()) == ["c1", "c2"]
    container = BlobServiceClient.from_connection_string(storage_connection).get_container_client(app_storage)
    [blob] = list(container.list_blobs())
    [line] = [json.loads(x) for x in container.download_blob(blob.name).readall().splitlines()]
    assert (line["reason"], line["partition"], line["sequence_number"]) == ("message is not JSON", "2", 31)
