"""Alert cards and webhook payloads link to the on-call lookup when the app's public URL is configured."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from shared.app import compose
from shared.core.message import Message
from shared.detect.state import MemoryDetectionStore
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.ingest.replay import Replay
from shared.notify import teams, webhook
from shared.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def notifications(public_url: str | None, monkeypatch: pytest.MonkeyPatch) -> list:
    if public_url:
        monkeypatch.setenv("BINDWATCH_PUBLIC_URL", public_url)
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "https://hooks.example.invalid/x")
    settings = load_settings()
    found: list = []
    detector = compose.detector(settings, MemoryDetectionStore(), found.extend)
    replay = Replay(Pipeline(MemoryStore(), 600.0, observers=[detector]))
    lines = (ROOT / "samples" / "02-burst.jsonl").read_bytes().splitlines()
    for _ in replay.run(Message(line) for line in lines if line.strip()):
        pass
    return found


def test_alerts_link_their_example_signins_to_the_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = notifications("https://bindwatch.example.net", monkeypatch)
    firing = [a for n in sent for a in n.alerts if a.status == "firing"]
    assert firing
    for alert in firing:
        lookups = {k: v for k, v in alert.links.items() if "/api/signins/" in v}
        assert lookups, alert.links
        assert all(v.startswith("https://bindwatch.example.net/api/signins/") for v in lookups.values())
        assert {v.rsplit("/", 1)[1] for v in lookups.values()} <= set(alert.examples)
    card = json.dumps(teams.message(sent[0], "https://bindwatch.example.net"))
    assert "/api/signins/" in card
    hook = orjson.loads(webhook.body(sent[0], "https://bindwatch.example.net"))
    assert any("/api/signins/" in link["url"] for a in hook["data"]["alerts"] for link in a["links"])


def test_no_lookup_links_without_a_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = notifications(None, monkeypatch)
    assert sent
    assert not any("/api/signins/" in v for n in sent for a in n.alerts for v in a.links.values())
