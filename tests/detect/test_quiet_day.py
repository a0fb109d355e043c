"""A generated ordinary day through the shipped rules raises nothing (issue 12: the old defaults paged ten times
on two such days). The tenant is the one `make eval-detect` measures, with its office-hours ramp, apps with their
own shares of unsupported devices, retrying devices and a new app rolled out during the morning."""

from __future__ import annotations

from shared.app import compose
from shared.core.alert import Notification
from shared.core.message import Message, Origin
from shared.detect.state import MemoryDetectionStore
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.settings import load_settings
from shared.synth.tenant import DAY, Tenant, body, records


def test_an_ordinary_weekday_of_a_generated_tenant_raises_nothing() -> None:
    tenant = Tenant(1_000, seed=5)
    settings = load_settings(
        ALERT_TEAMS_WEBHOOK_URL="https://contoso.webhook.office.com/x", ALERT_WEBHOOK_URL="https://h.example/x"
    )
    told: list[Notification] = []
    pipeline = Pipeline(
        MemoryStore(), settings.settle_seconds, [compose.detector(settings, MemoryDetectionStore(), told.extend)]
    )
    alerts, serial, unbound = [], 0, 0
    for _, attempts in tenant.stream(tenant.start, tenant.start + DAY):
        items = []
        for attempt in attempts:
            serial += 1
            unbound += attempt.status == "unbound" and not attempt.browser
            items += records(attempt, serial)
        outcome = pipeline.ingest([Message(body(items), Origin(source="test"))])
        alerts += [line for line in outcome.observed if line["type"] == "alert"]
    alerts += [line for line in pipeline.drain().observed if line["type"] == "alert"]
    assert unbound > 1_000  # plenty of unbound sign-ins: the quiet is the rules', not the data's
    assert alerts == [] and told == []
