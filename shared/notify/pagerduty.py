"""PagerDuty Events API v2: one trigger or resolve event per notification, keyed by its incident; and its notifier.

The events are pure. PagerDuty folds every event with the same `dedup_key` into one incident, so one
bindwatch incident is one PagerDuty incident: its first notification opens it, an escalation or a reminder
updates it (the same key: no new page), and its resolve closes it. Notifications made before incidents
existed (an outbox may still hold some) keep one event per alert, keyed by the alert's fingerprint.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from shared.core.alert import Alert, Notification
from shared.core.links import ENTRA_SIGNIN_LOGS
from shared.core.timestamp import iso

from .destination import Answer, Outcome, Outgoing, Redactor, classify

NAME = "pagerduty"
ENQUEUE_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITIES = {"critical": "critical", "error": "error", "warning": "warning", "info": "info"}
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
MAX_LIST = 20


def dedup_key(alert: Alert) -> str:
    """The fingerprint; hashed only if it is longer than PagerDuty accepts (255 characters)."""
    if len(alert.fingerprint) <= MAX_DEDUP_KEY:
        return alert.fingerprint
    return hashlib.sha256(alert.fingerprint.encode()).hexdigest()


def event(alert: Alert, routing_key: str, public_url: str | None = None) -> dict[str, Any]:
    """The Events v2 body for one alert: trigger while firing, resolve once resolved."""
    if alert.status == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key(alert)}
    result: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(alert),
        "payload": {
            "summary": summary(alert),
            "source": "bindwatch",
            "severity": SEVERITIES.get(alert.severity, "warning"),
            "timestamp": iso(alert.at),
            "component": ", ".join(f"{k}={v}" for k, v in alert.group.items())[:255] or None,
            "group": alert.rule[:255],
            "class": alert.kind or None,
            "custom_details": details(alert),
        },
        "client": "bindwatch",
        "links": links(alert),
    }
    if public_url:
        result["client_url"] = public_url
    result["payload"] = {k: v for k, v in result["payload"].items() if v is not None}
    return result


def summary(alert: Alert) -> str:
    text = f"[{alert.enforcement}] {alert.title or alert.rule}"
    if alert.summary:
        text += f": {alert.summary}"
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1] + "…"


def details(alert: Alert) -> dict[str, Any]:
    """What a responder reads in the incident: the measurement, top lists and codes (lists capped)."""
    return {
        "fingerprint": alert.fingerprint,
        "rule": alert.rule,
        "enforcement": alert.enforcement,
        "current": alert.current,
        "baseline": alert.baseline,
        "window_seconds": alert.window_seconds,
        "signins": alert.signins,
        "unbound": alert.unbound,
        "starts_at": iso(alert.starts_at) if alert.starts_at else None,
        "top": {key: [f"{n}: {c}" for n, c in items[:MAX_LIST]] for key, items in alert.top.items()},
        "codes": [{k: str(v)[:500] for k, v in c.items()} for c in alert.codes[:MAX_LIST]],
        "examples": alert.examples[:MAX_LIST],
        "kql": alert.kql[:4000],
        "change": alert.change[:1000],
        "way_back": [step[:500] for step in alert.way_back[:MAX_LIST]],
    }


def incident_event(notification: Notification, routing_key: str, public_url: str | None = None) -> dict[str, Any]:
    """The one event of an incident's notification: trigger (opened, escalated, repeated) or resolve."""
    key = notification.incident[:MAX_DEDUP_KEY]
    if notification.reason == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    alerts = notification.alerts
    top = alerts[0]
    more = len(alerts) - 1 + notification.omitted
    text = summary(top)
    if more:
        text = text[: MAX_SUMMARY - 40] + f" (+{more} more alert{'s' if more > 1 else ''})"
    body = event(top, routing_key, public_url)
    body["dedup_key"] = key
    body["payload"]["summary"] = text[:MAX_SUMMARY]
    body["payload"]["severity"] = SEVERITIES.get(notification.severity, "warning")
    body["payload"]["custom_details"] = {
        "incident": notification.incident,
        "reason": notification.reason,
        "alerts": [
            {
                "rule": a.rule,
                "status": a.status,
                "severity": a.severity,
                "title": a.title[:255],
                "summary": a.summary[:500],
                "change": a.change[:300],
            }
            for a in alerts[:MAX_LIST]
        ],
        "omitted": notification.omitted + max(0, len(alerts) - MAX_LIST),
        **details(top),
    }
    return body


def links(alert: Alert) -> list[dict[str, str]]:
    result = [{"href": url, "text": title} for title, url in alert.links.items() if url.startswith("http")]
    if not result:
        result.append({"href": ENTRA_SIGNIN_LOGS, "text": "Entra sign-in logs"})
    return result[:10]


class PagerDutyNotifier(Redactor):
    """Events v2: one event per notification, dedup_key = its incident (older notifications: one per alert)."""

    name = NAME

    def __init__(self, routing_key: str, url: str = ENQUEUE_URL, public_url: str | None = None) -> None:
        super().__init__([routing_key])
        self._key = routing_key
        self._url = url
        self._public_url = public_url

    def requests(self, notification: Notification, now: float) -> list[Outgoing]:
        if notification.incident and (notification.alerts or notification.reason == "resolved"):
            body = orjson.dumps(incident_event(notification, self._key, self._public_url))
            part = f"{notification.reason}:{notification.sequence}:{notification.incident}"
            return [Outgoing(part, self._url, body, {"content-type": "application/json"})]
        return [
            Outgoing(
                f"{index}:{alert.status}:{dedup_key(alert)}",
                self._url,
                orjson.dumps(event(alert, self._key, self._public_url)),
                {"content-type": "application/json"},
            )
            for index, alert in enumerate(notification.alerts)
        ]

    def judge(self, answer: Answer) -> Outcome:
        return classify(answer)
