"""The generic webhook: a versioned JSON payload, its Standard Webhooks signature, and its notifier.

The payload and signature are pure. The payload is documented by `docs/webhook-payload.schema.json`; a change that
breaks receivers bumps VERSION. The signature follows Standard Webhooks v1: the
HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`, keyed by the base64 bytes
after `whsec_`, so any Standard Webhooks library verifies it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import orjson

from shared.core.alert import Alert, Notification
from shared.core.timestamp import iso
from shared.settings import ConfigurationError

from .destination import Answer, Outcome, Outgoing, Redactor, classify

NAME = "webhook"

VERSION = "1"
EVENT_TYPE = "bindwatch.notification"
SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # Standard Webhooks: secrets are 24-64 random bytes


class SecretError(ConfigurationError):
    """The webhook secret is not `whsec_` + base64; the message never contains the secret."""


def payload(notification: Notification, public_url: str | None = None) -> dict[str, Any]:
    """The body receivers get: Standard Webhooks' {type, timestamp, data} with bindwatch's version and id."""
    firing = [a for a in notification.alerts if a.status == "firing"]
    return {
        "type": EVENT_TYPE,
        "version": VERSION,
        "id": notification.id,
        "timestamp": iso(notification.created_at),
        "data": {
            "receiver": notification.receiver,
            "status": "firing" if firing else "resolved",
            "firing": len(firing),
            "resolved": len(notification.alerts) - len(firing),
            "externalURL": public_url,
            "incident": incident_payload(notification),
            "alerts": [alert_payload(a) for a in notification.alerts],
        },
    }


def incident_payload(notification: Notification) -> dict[str, Any] | None:
    """Which incident this tells of and why: receivers update one record per `id` (None for older notifications)."""
    if not notification.incident:
        return None
    return {
        "id": notification.incident,
        "reason": notification.reason,
        "severity": notification.severity,
        "openedAt": iso(notification.opened_at) if notification.opened_at else None,
        "omitted": notification.omitted,
    }


def alert_payload(alert: Alert) -> dict[str, Any]:
    """One alert: identity and status first (fingerprint is the dedup key across notifications), then detail."""
    return {
        "fingerprint": alert.fingerprint,
        "status": alert.status,
        "incident": alert.incident or None,
        "rule": alert.rule,
        "title": alert.title,
        "severity": alert.severity,
        "enforcement": alert.enforcement,
        "kind": alert.kind,
        "group": dict(alert.group),
        "startsAt": iso(alert.starts_at) if alert.starts_at else None,
        "at": iso(alert.at),
        "summary": alert.summary,
        "current": alert.current,
        "baseline": alert.baseline,
        "windowSeconds": alert.window_seconds,
        "signins": alert.signins,
        "unbound": alert.unbound,
        "top": {key: [{"name": n, "count": c} for n, c in items] for key, items in alert.top.items()},
        "codes": list(alert.codes),
        "examples": list(alert.examples),
        "kql": alert.kql,
        "links": [{"title": t, "url": u} for t, u in alert.links.items()],
        "change": alert.change or None,
        "wayBack": list(alert.way_back),
    }


def body(notification: Notification, public_url: str | None = None) -> bytes:
    """The exact bytes sent and signed (deterministic for one notification)."""
    return orjson.dumps(payload(notification, public_url), default=str)


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64-decoded part after `whsec_` (the prefix is optional, as in the reference libraries)."""
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)  # unpadded is common
    except (binascii.Error, ValueError):
        raise SecretError("setting ALERT_WEBHOOK_SECRET: not base64 after the whsec_ prefix") from None
    if not key:
        raise SecretError("setting ALERT_WEBHOOK_SECRET: empty")
    if len(key) < MIN_SECRET_BYTES:
        raise SecretError(
            f"setting ALERT_WEBHOOK_SECRET: {len(key)} bytes after whsec_; at least {MIN_SECRET_BYTES} random bytes "
            "are needed (Standard Webhooks), e.g. whsec_$(openssl rand -base64 32)"
        )
    return key


def signature(key: bytes, message_id: str, timestamp: int, content: bytes) -> str:
    """`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`."""
    signed = f"{message_id}.{timestamp}.".encode() + content
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(key: bytes | None, message_id: str, timestamp: int, content: bytes) -> dict[str, str]:
    """Standard Webhooks headers; the id is the notification's, the same on every retry, so receivers dedupe."""
    result = {"content-type": "application/json", "webhook-id": message_id, "webhook-timestamp": str(timestamp)}
    if key is not None:
        result["webhook-signature"] = signature(key, message_id, timestamp, content)
    return result


class WebhookNotifier(Redactor):
    """A signed (Standard Webhooks) JSON POST; webhook-id is the notification's id, the same on every retry."""

    name = NAME

    def __init__(self, url: str, secret: str | None = None, public_url: str | None = None) -> None:
        super().__init__([url] + ([secret] if secret else []))
        self._url = url
        self._key = secret_key(secret) if secret else None
        self._public_url = public_url

    def requests(self, notification: Notification, now: float) -> list[Outgoing]:
        content = body(notification, self._public_url)
        return [Outgoing("message", self._url, content, headers(self._key, notification.id, int(now), content))]

    def judge(self, answer: Answer) -> Outcome:
        return classify(answer)
