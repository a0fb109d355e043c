"""Notifiers: what each destination receives, how its answers are judged, signatures checked independently."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jsonschema
import orjson
import pytest
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook

from shared.core.alert import Notification
from shared.notify import pagerduty, webhook
from shared.notify.destination import Answer, Outgoing, classify
from shared.notify.pagerduty import PagerDutyNotifier
from shared.notify.registry import notifiers_from_settings
from shared.notify.teams import TeamsNotifier
from shared.notify.transport import HttpTransport
from shared.notify.webhook import WebhookNotifier
from shared.settings import load_settings
from shared.synth.alerts import sample

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_" + base64.b64encode(b"bindwatch-test-secret-32-bytes!!").decode()
TEAMS_URL = "https://prod-00.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=SAS0secret0sig"


INCIDENT = "inc-5a7e1c0d9b3f2e4a6c8d"


def notification(*statuses: str) -> Notification:
    alerts = [sample(kind, status) for kind, status in zip(("spike", "ratio", "new"), statuses, strict=False)]
    return Notification("webhook", alerts, 1_773_152_460.0)


def incident_notification(receiver: str = "webhook", reason: str = "opened") -> Notification:
    """What detection hands over now: one incident's alerts, the highest severity first."""
    alerts = [sample("spike"), sample("ratio", "resolved")]
    for alert in alerts:
        alert.incident = INCIDENT
    return Notification(
        receiver,
        alerts,
        1_773_152_460.0,
        INCIDENT,
        reason,
        "critical",
        opened_at=1_773_151_500.0,  # type: ignore[arg-type]
    )


# --- an independent Standard Webhooks verifier, written from the spec text (not from shared.webhook) ---


def spec_verify(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> bool:
    """Spec: signed content is `{id}.{timestamp}.{body}`; key is base64 after `whsec_`; header is a
    space-delimited list of `v1,<base64 HMAC-SHA256>`; reject stale timestamps; compare in constant time."""
    key = base64.b64decode(secret.split("_", 1)[1])
    timestamp = headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    content = headers["webhook-id"].encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    for entry in headers["webhook-signature"].split(" "):
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


def test_signature_matches_the_published_test_vector() -> None:
    key = webhook.secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signed = webhook.signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signed == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_signed_webhook_verifies_with_the_reference_library_and_the_spec() -> None:
    notifier = WebhookNotifier("https://hooks.example/in", SECRET)
    (outgoing,) = notifier.requests(notification("firing"), time.time())
    Webhook(SECRET).verify(outgoing.body, outgoing.headers)  # raises if wrong
    assert spec_verify(SECRET, outgoing.headers, outgoing.body)
    assert not spec_verify(SECRET, outgoing.headers, outgoing.body + b" ")
    other = "whsec_" + base64.b64encode(b"another-secret-another-secret!!!").decode()
    assert not spec_verify(other, outgoing.headers, outgoing.body)


def test_webhook_id_is_the_same_across_retries_and_the_timestamp_is_not() -> None:
    notifier = WebhookNotifier("https://hooks.example/in", SECRET)
    first = notifier.requests(notification("firing"), 1_000_000.0)[0]
    again = notifier.requests(notification("firing"), 1_000_090.0)[0]
    assert first.headers["webhook-id"] == again.headers["webhook-id"] == notification("firing").id
    assert (first.headers["webhook-timestamp"], again.headers["webhook-timestamp"]) == ("1000000", "1000090")
    assert first.headers["webhook-signature"] != again.headers["webhook-signature"]
    assert first.body == again.body


def test_without_a_secret_the_webhook_is_unsigned_but_still_carries_its_id() -> None:
    (outgoing,) = WebhookNotifier("https://hooks.example/in").requests(notification("firing"), 1.0)
    assert "webhook-signature" not in outgoing.headers
    assert outgoing.headers["webhook-id"].startswith("msg_")


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_"])
def test_a_bad_secret_is_named_but_never_echoed(secret: str) -> None:
    with pytest.raises(webhook.SecretError) as raised:
        WebhookNotifier("https://hooks.example/in", secret)
    assert "ALERT_WEBHOOK_SECRET" in str(raised.value) and "base64!" not in str(raised.value)


def schema_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / "docs" / "webhook-payload.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_the_payload_and_the_documented_example_follow_the_schema() -> None:
    validator = schema_validator()
    for statuses in (("firing",), ("resolved",), ("firing", "resolved", "firing")):
        document = orjson.loads(webhook.body(notification(*statuses)))
        validator.validate(document)
        assert [a["fingerprint"] for a in document["data"]["alerts"]]
        assert document["data"]["status"] == ("firing" if "firing" in statuses else "resolved")
    example = json.loads((ROOT / "docs" / "webhook-payload.example.json").read_text())
    validator.validate(example)
    regenerated = webhook.payload(incident_notification(), "https://bindwatch.contoso.example")
    assert example == json.loads(orjson.dumps(regenerated))  # the example is what the code sends
    assert example["data"]["incident"]["id"] == INCIDENT and example["data"]["incident"]["reason"] == "opened"


def test_the_schema_rejects_a_payload_without_fingerprint() -> None:
    document = orjson.loads(webhook.body(notification("firing")))
    del document["data"]["alerts"][0]["fingerprint"]
    with pytest.raises(jsonschema.ValidationError):
        schema_validator().validate(document)


def test_pagerduty_triggers_and_resolves_by_fingerprint_with_mapped_severity() -> None:
    notifier = PagerDutyNotifier("R" * 32)
    firing, resolved = sample("spike"), sample("ratio", "resolved")
    requests = notifier.requests(Notification("pagerduty", [firing, resolved], 1.0), 1.0)
    trigger, resolve = (orjson.loads(r.body) for r in requests)
    assert trigger["event_action"] == "trigger" and trigger["dedup_key"] == firing.fingerprint
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["source"] == "bindwatch"
    assert len(trigger["payload"]["summary"]) <= 1024 and trigger["routing_key"] == "R" * 32
    assert resolve == {"routing_key": "R" * 32, "event_action": "resolve", "dedup_key": resolved.fingerprint}
    assert len({r.part for r in requests}) == 2


def test_pagerduty_gets_one_event_per_incident_notification_keyed_by_the_incident() -> None:
    notifier = PagerDutyNotifier("R" * 32)
    (opened,) = notifier.requests(incident_notification("pagerduty"), 1.0)
    trigger = orjson.loads(opened.body)
    assert trigger["event_action"] == "trigger" and trigger["dedup_key"] == INCIDENT
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["summary"].endswith("(+1 more alert)")
    assert [a["rule"] for a in trigger["payload"]["custom_details"]["alerts"]] == ["unbound-spike", "unbound-ratio"]
    (escalated,) = notifier.requests(incident_notification("pagerduty", "escalated"), 1.0)
    assert orjson.loads(escalated.body)["dedup_key"] == INCIDENT and escalated.part != opened.part
    (resolved,) = notifier.requests(incident_notification("pagerduty", "resolved"), 1.0)
    assert orjson.loads(resolved.body) == {"routing_key": "R" * 32, "event_action": "resolve", "dedup_key": INCIDENT}


def test_pagerduty_limits_are_kept() -> None:
    alert = sample("spike")
    alert.fingerprint, alert.summary, alert.severity = "f" * 300, "s" * 5000, "bogus"  # type: ignore[assignment]
    event = pagerduty.event(alert, "key")
    assert len(event["dedup_key"]) <= 255 and len(event["payload"]["summary"]) <= 1024
    assert event["payload"]["severity"] == "warning"


def test_teams_posts_the_card_envelope() -> None:
    (outgoing,) = TeamsNotifier(TEAMS_URL).requests(Notification("teams", [sample("spike")], 1.0), 1.0)
    assert orjson.loads(outgoing.body)["attachments"][0]["content"]["version"] == "1.4"
    assert outgoing.url == TEAMS_URL


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (Answer(200), "delivered"),
        (Answer(202), "delivered"),
        (Answer(204), "delivered"),
        (Answer(None, error="ConnectError"), "retry"),
        (Answer(None, error="InvalidURL", fatal=True), "failed"),
        (Answer(408), "retry"),
        (Answer(429), "retry"),
        (Answer(500), "retry"),
        (Answer(503), "retry"),
        (Answer(301), "failed"),
        (Answer(400), "failed"),
        (Answer(403), "failed"),
        (Answer(404), "failed"),
        (Answer(410), "failed"),
    ],
)
def test_answers_are_judged(answer: Answer, outcome: str) -> None:
    assert classify(answer) == outcome


def test_teams_treats_a_legacy_200_throttle_as_a_retry() -> None:
    notifier = TeamsNotifier(TEAMS_URL)
    assert notifier.judge(Answer(200, "Microsoft Teams endpoint returned HTTP error 429")) == "retry"
    assert notifier.judge(Answer(202, "")) == "delivered"


def test_redaction_blanks_the_url_its_signature_and_the_secrets() -> None:
    teams = TeamsNotifier(TEAMS_URL)
    assert "SAS0secret0sig" not in teams.redact(f"bad request to {TEAMS_URL} and sig=SAS0secret0sig")
    hook = WebhookNotifier("https://hooks.example/in?token=abcdefgh12345", SECRET)
    assert "abcdefgh12345" not in hook.redact("token abcdefgh12345") and SECRET not in hook.redact(SECRET)
    assert "RRRR" not in PagerDutyNotifier("R" * 32).redact("key " + "R" * 32)


def test_notifiers_come_from_settings_by_name() -> None:
    assert notifiers_from_settings(load_settings()) == {}
    settings = load_settings(
        ALERT_TEAMS_WEBHOOK_URL=TEAMS_URL,
        ALERT_WEBHOOK_URL="https://hooks.example/in",
        ALERT_WEBHOOK_SECRET=SECRET,
        ALERT_PAGERDUTY_ROUTING_KEY="R" * 32,
    )
    found = notifiers_from_settings(settings)
    assert sorted(found) == ["pagerduty", "teams", "webhook"]
    (outgoing,) = found["pagerduty"].requests(Notification("pagerduty", [sample("spike")], 1.0), 1.0)
    assert outgoing.url == pagerduty.ENQUEUE_URL


def test_a_teams_url_on_any_host_is_accepted() -> None:
    url = "https://default0123.environment.api.powerplatform.com/powerautomate/automations/direct/x?sig=y"
    settings = load_settings(ALERT_TEAMS_WEBHOOK_URL=url)
    (outgoing,) = notifiers_from_settings(settings)["teams"].requests(notification("firing"), 1.0)
    assert outgoing.url == url


def test_outgoing_repr_never_shows_the_url_or_body() -> None:
    text = repr(Outgoing("message", TEAMS_URL, b"body", {"webhook-signature": "v1,x"}))
    assert "SAS0secret0sig" not in text and "v1,x" not in text


def test_the_transport_answers_instead_of_raising(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/teams", method="POST").respond_with_data("", status=202)
    httpserver.expect_request("/full").respond_with_data("x" * 10_000, status=400, headers={"Retry-After": "7"})
    transport = HttpTransport()
    try:
        assert transport.send(Outgoing("m", httpserver.url_for("/teams"), b"{}")).status == 202
        answer = transport.send(Outgoing("m", httpserver.url_for("/full"), b"{}"))
        assert (answer.status, len(answer.text), answer.retry_after) == (400, 500, "7")
        bad = transport.send(Outgoing("m", "not a url at all", b"{}"))
        assert bad.status is None and bad.fatal
        refused = transport.send(Outgoing("m", "http://127.0.0.1:9/x", b"{}"))
        assert refused.status is None and refused.error and not refused.fatal
    finally:
        transport.close()


def test_a_token_in_the_url_path_is_redacted_from_answers() -> None:
    from shared.notify.webhook import WebhookNotifier

    token = "xoxbSECRETTOKEN123456"
    notifier = WebhookNotifier(f"https://hooks.example.invalid/services/T000/B000/{token}", None)
    echoed = f"Cannot POST /services/T000/B000/{token} (404)"
    assert token not in notifier.redact(echoed)
