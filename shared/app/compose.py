"""The composition root: every entry point's parts, built here from the settings and nowhere else.

The Event Hub function and the standalone consumer get the ingest service on
Table Storage; the lookup and health functions get only the sign-in table they
read; replay and report get the same pipeline in memory (and, for replay, the
destinations from the settings); the benchmarks build what users run through the
same functions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from shared.core.alert import Notification
from shared.core.clock import Clock
from shared.detect.detector import Detector
from shared.detect.guardrail import KEEP_CHANGES, Guardrail
from shared.detect.guardrail_store import GuardrailState, GuardrailStore, MemoryGuardrailStore
from shared.detect.rules import RulesFile, load_rules
from shared.detect.silence import SilenceStore
from shared.detect.state import DetectionStore, MemoryDetectionStore
from shared.graph.client import GraphClient, open_graph
from shared.ingest.files import Source
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Observer, Pipeline
from shared.ingest.store import SignInStore
from shared.notify.delivery import Delivery
from shared.notify.outbox import MemoryOutbox, Outbox
from shared.notify.registry import configured, notifiers_from_settings
from shared.settings import ConfigurationError, Settings
from shared.storage.account import blob_service, table_service
from shared.storage.archive_blob import archive_sources as _archive_sources
from shared.storage.deadletter_blob import BlobDeadLetter
from shared.storage.detection_table import TableDetectionStore
from shared.storage.guardrail_table import TableGuardrail
from shared.storage.outbox_table import TableOutbox
from shared.storage.signin_table import BucketMismatch, TableStore
from shared.storage.silence_table import TableSilences
from shared.telemetry import log_event
from shared.views.access import LookupAccess
from shared.views.lookup import StoreDetails
from shared.views.readiness import Readiness

from .service import IngestService
from .silences import SilenceWatch

Handoff = Callable[[list[Notification]], object]


def validate(settings: Settings) -> None:
    """Read the rules file and the destinations now, so a bad value stops the start naming it."""
    load_rules(settings.rules_file)
    notifiers_from_settings(settings)  # decodes ALERT_WEBHOOK_SECRET


def check_state(settings: Settings) -> None:
    """At the worker's start: a sign-in table of another bucket count than STATE_SIGNIN_BUCKETS stops the start,
    naming the setting (else every batch would fail, be retried and be skipped). Storage that is not set, or not
    reachable right now, is left to the first invocation, which retries: a storage blip must not stop the worker."""
    try:
        signin_table(settings, retry_total=1, connection_timeout=10)
    except BucketMismatch:
        raise
    except ConfigurationError:
        return  # no storage set (tests, scripts): table_service says so when it is needed
    except Exception as error:
        log_event("state_check_skipped", logging.WARNING, error=type(error).__name__)


def detector(
    settings: Settings,
    store: DetectionStore,
    handoff: Handoff | None = None,
    silences: SilenceStore | None = None,
    guardrail: Guardrail | None = None,
) -> Detector:
    """Detection from the rules file (RULES_FILE, else the shipped rules.toml) over a detection store, honouring
    the run-time silences of `silences` (the function's and the consumer's; replay has only the rules file's);
    its alerts name the policy change `guardrail` saw shortly before they began."""
    rules: RulesFile = load_rules(settings.rules_file)
    watch = SilenceWatch(silences) if silences is not None else None
    explain = guardrail.explain if guardrail is not None else None
    return Detector(rules, store, configured(settings), settings.public_url, handoff, silences=watch, explain=explain)


def guardrail(settings: Settings, store: GuardrailStore, handoff: Handoff | None = None) -> Guardrail:
    """The watch on token protection policy changes, set by the rules file's [guardrail]."""
    rules: RulesFile = load_rules(settings.rules_file)
    return Guardrail(rules.guardrail, store, configured(settings), settings.public_url, handoff)


def observers(
    settings: Settings,
    stores: tuple[DetectionStore, GuardrailStore],
    handoff: Handoff | None = None,
    silences: SilenceStore | None = None,
) -> list[Observer]:
    """The guardrail, then detection: a batch's policy changes are known before its alerts are rendered."""
    guard = guardrail(settings, stores[1], handoff)
    return [guard, detector(settings, stores[0], handoff, silences, guard)]


@dataclass(frozen=True)
class AlertOverview:
    """What `python -m shared alerts` reads: detection state, the outbox, the silences, and the rules."""

    detection: TableDetectionStore
    outbox: TableOutbox
    silences: TableSilences
    rules: RulesFile


def alert_overview(settings: Settings) -> AlertOverview:
    service = table_service(settings)
    prefix = settings.state_table_prefix
    return AlertOverview(
        TableDetectionStore(service, prefix),
        TableOutbox(service, prefix),
        TableSilences(service, prefix),
        load_rules(settings.rules_file),
    )


def silence_store(settings: Settings) -> TableSilences:
    """The run-time silences of the deployment (`python -m shared silence`), in the state account."""
    return TableSilences(table_service(settings), settings.state_table_prefix)


def delivery(settings: Settings, outbox: Outbox, clock: Clock | None = None) -> Delivery | None:
    """Delivery over the configured destinations; None when no destination is configured."""
    notifiers = notifiers_from_settings(settings)
    if not notifiers:
        return None
    return Delivery(outbox, notifiers, clock)


def signin_table(settings: Settings, **options: Any) -> TableStore:
    """The sign-in table of the configured account, created if missing, with its bucket count checked against
    STATE_SIGNIN_BUCKETS (a ConfigurationError stops the start when they differ); `options` go to the SDK client."""
    service = table_service(settings, **options)
    return TableStore(service, prefix=settings.state_table_prefix, buckets=settings.signin_buckets).ensure()


def signin_store(settings: Settings, kind: str) -> SignInStore:
    """`memory` (replay's default) or `table` (the function's, and `--store table`)."""
    return signin_table(settings) if kind == "table" else MemoryStore()


def ingest_service(settings: Settings) -> IngestService:
    """The function's (and the consumer's) service: state, alerts and the outbox in tables, rejections in blobs."""
    service = table_service(settings)
    sender = delivery(settings, TableOutbox(service, settings.state_table_prefix))
    silences = TableSilences(service, settings.state_table_prefix)
    stores = (
        TableDetectionStore(service, settings.state_table_prefix),
        TableGuardrail(service, settings.state_table_prefix),
    )
    watchers = observers(settings, stores, _handoff(sender), silences)
    pipeline = Pipeline(signin_table(settings), settings.settle_seconds, observers=watchers)
    dead_letter = BlobDeadLetter(blob_service(settings).get_container_client(settings.rejected_container))
    return IngestService(
        pipeline,
        dead_letter,
        sender,
        retention_seconds=settings.retention_days * 86400.0,
        budget_seconds=settings.invocation_budget_seconds,
    )


def guardrail_state(settings: Settings) -> GuardrailState:
    """What `python -m shared guardrail` reads: the guardrail's table as the function loads it, as of the stream's
    event clock (the wall clock before any sign-in was stored)."""
    table = TableGuardrail(table_service(settings), settings.state_table_prefix)
    clock = signin_table(settings).load_clock()
    return table.load((clock.watermark if clock else time.time()) - KEEP_CHANGES)


def report_store(settings: Settings) -> StoreDetails:
    """What `report --store table` reads: the stored sign-ins, and the policy changes the function kept."""
    service = table_service(settings)
    return StoreDetails(signin_table(settings), TableGuardrail(service, settings.state_table_prefix).changes)


def detail_store(settings: Settings) -> StoreDetails:
    """What the lookup and health functions read: the sign-in table only, no rules, no destinations."""
    return StoreDetails(signin_table(settings))


def lookup_access(settings: Settings) -> LookupAccess:
    """Who may open the lookup: App Service Authentication on, and the named role or group.

    The platform's own WEBSITE_AUTH_ENABLED decides when it is present (False always wins); where a plan does not
    inject it, LOOKUP_AUTH_ENABLED, set by the same Bicep that switches App Service Authentication on, stands in.
    """
    platform = settings.website_auth_enabled
    auth_on = platform if platform is not None else settings.lookup_auth_enabled
    return LookupAccess(auth_on, settings.lookup_allowed_role, settings.lookup_allowed_group)


def replay_pipeline(
    settings: Settings, store: SignInStore, settle_seconds: float, sender: Delivery | None = None
) -> Pipeline:
    """Replay's pipeline: detection state stays in memory, so a replay never touches live alert states."""
    watchers = observers(settings, (MemoryDetectionStore(), MemoryGuardrailStore()), _handoff(sender))
    return Pipeline(store, settle_seconds, observers=watchers)


def replay_delivery(settings: Settings) -> Delivery | None:
    """Replay delivers to the destinations set in its environment, through an outbox in memory."""
    return delivery(settings, MemoryOutbox())


def report_pipeline(settle_seconds: float) -> tuple[Pipeline, Readiness]:
    """The report's pipeline: judging and settling only, with the readiness figures as its observer."""
    readiness = Readiness()
    return Pipeline(MemoryStore(), settle_seconds, observers=[readiness]), readiness


def archive_sources(settings: Settings, url: str) -> Iterator[Source]:
    """The blobs of a diagnostic setting's storage archive (`--from-storage`), as replay and report inputs."""
    return _archive_sources(settings, url)


def graph_client(settings: Settings, sleep: Callable[[float], None] | None = None) -> GraphClient:
    """Graph for `pull`: GRAPH_ACCESS_TOKEN when set (scripts), else the caller's identity (DefaultAzureCredential)."""
    token = settings.graph_access_token.get_secret_value() if settings.graph_access_token is not None else None
    return open_graph(settings.graph_url, token, sleep)


def _handoff(sender: Delivery | None) -> Handoff | None:
    return sender.enqueue if sender is not None else None
