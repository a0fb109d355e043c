"""`python -m shared send` and `consume`: bindwatch against a real Event Hub, without Functions.

`send` is the smoke test after a deployment; `consume` runs the function's own
ingest service as a plain process with blob checkpoints, in the same storage
account as the function's state and dead letters.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

from shared.app import compose
from shared.app.service import IngestService
from shared.eventhub.consume import (
    DEFAULT_CHECKPOINT_CONTAINER,
    START_POSITIONS,
    CheckpointLocation,
    Consumer,
    ConsumerClient,
    ConsumeTarget,
    ReceiveOptions,
    open_consumer,
    receive,
)
from shared.eventhub.hub import Hub, bare_host
from shared.eventhub.send import Producer, open_producer, send_messages
from shared.ingest.files import check_paths, messages_from
from shared.ingest.memory_store import MemoryStore
from shared.settings import ConfigurationError, Settings
from shared.storage.account import account

log = logging.getLogger("bindwatch.eventhub")
ProducerFactory = Callable[[Hub], Producer]
ClientFactory = Callable[[ConsumeTarget], ConsumerClient]


def hub_from(args: argparse.Namespace, settings: Settings) -> Hub:
    """The namespace and hub from the arguments, else from the app settings the Function App uses."""
    namespace = args.namespace or settings.eventhub_namespace
    if not namespace:
        raise ConfigurationError(
            "no Event Hubs namespace: pass --namespace or set EventHubConnection__fullyQualifiedNamespace"
        )
    return Hub(bare_host(namespace), args.hub or settings.eventhub_name)


def checkpoint_location(args: argparse.Namespace, settings: Settings) -> CheckpointLocation:
    """`--checkpoint-account-url`, else the account that keeps state and dead letters (one choice for all)."""
    container = args.checkpoint_container
    if args.checkpoint_account_url:
        return CheckpointLocation(container, account_url=args.checkpoint_account_url)
    try:
        chosen = account(settings, "blob")
    except ConfigurationError:
        raise ConfigurationError(
            "no storage for checkpoints: pass --checkpoint-account-url or set STATE_BLOB_SERVICE_URI, "
            "STATE_STORAGE_CONNECTION, AzureWebJobsStorage__blobServiceUri, AzureWebJobsStorage__accountName "
            "or AzureWebJobsStorage"
        ) from None
    return CheckpointLocation(container, account_url=chosen.endpoint, connection=chosen.connection)


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
    service_factory: Callable[[Settings], IngestService] | None = None,
    client_factory: ClientFactory | None = None,
) -> int:
    """Consume until SIGTERM or SIGINT (0), or until the service refuses us (1). Defaults: the function's own."""
    target = ConsumeTarget(
        hub_from(args, settings),
        args.consumer_group or settings.eventhub_consumer_group,
        checkpoint_location(args, settings),
    )
    logging.getLogger("bindwatch").setLevel(logging.INFO)  # the structured events are the consumer's output
    service = (service_factory or compose.ingest_service)(settings)
    if isinstance(service.pipeline.store, MemoryStore):
        log.warning("sign-ins are kept in memory: a restart forgets the open ones while the checkpoints stay")
    consumer = Consumer(service.pipeline, service.report_and_send, service.dead_letter, args.tick_seconds)
    client = (client_factory or open_consumer)(target)
    log.warning(
        "consuming %s on %s as %s; checkpoints in %s",
        target.hub.name,
        target.hub.namespace,
        target.consumer_group,
        target.checkpoints.describe(),
    )
    return receive(client, consumer, ReceiveOptions(args.batch, args.max_wait, args.start))


def _add_hub_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--namespace", help="<name>.servicebus.windows.net; default: EventHubConnection__fullyQualifiedNamespace"
    )
    parser.add_argument("--hub", help="Event Hub name; default: SIGNIN_EVENTHUB_NAME")


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
