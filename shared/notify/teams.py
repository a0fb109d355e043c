"""Microsoft Teams: the Workflows message (one Adaptive Card 1.4, always under the size budget) and its notifier.

The card is pure: alerts in, a JSON-ready dict out. Teams drops messages over 28 KB (counted on
the posted message properties, not the HTTP body), so the card is built against a
20 KB budget with a ladder of ever smaller limits: lists are trimmed and the card
says so, and the last rung always fits. A card that is too large is never an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.core.alert import Alert, Notification
from shared.core.links import ENTRA_SIGNIN_LOGS

from .destination import Answer, Outcome, Outgoing, Redactor, classify

NAME = "teams"
BUDGET_BYTES = 20_000
CARD_VERSION = "1.4"
MAX_URL = 2_000
MAX_ACTIONS = 5

_COLOURS = {"critical": "Attention", "error": "Attention", "warning": "Warning", "info": "Accent"}
_STYLES = {"critical": "attention", "error": "attention", "warning": "warning", "info": "accent"}
_ENFORCEMENT = {
    "report_only": "Report-only (would be blocked)",
    "enforced": "Enforced (was blocked)",
    "any": "Report-only and enforced",
}
_TOP_NAMES = {"apps": "Top apps", "resources": "Top resources", "users": "Top users", "platforms": "Top platforms"}


@dataclass(frozen=True, slots=True)
class Limits:
    """How much of each alert one rung of the ladder shows."""

    alerts: int  # alerts shown in full; the rest are listed by title
    top: int  # entries per top list
    examples: int
    codes: int
    text: int  # characters of any free text (summary, fixes, names)
    kql: bool
    listed: int = 20  # alerts beyond `alerts` still named by title
    links: bool = True  # the alerts' own buttons; the Entra sign-in logs button is always there


LADDER = (
    Limits(alerts=10, top=10, examples=5, codes=5, text=600, kql=True),
    Limits(alerts=5, top=5, examples=3, codes=3, text=300, kql=True),
    Limits(alerts=3, top=3, examples=2, codes=2, text=200, kql=False),
    Limits(alerts=1, top=3, examples=1, codes=1, text=120, kql=False, listed=10),
    Limits(alerts=1, top=0, examples=0, codes=0, text=80, kql=False, listed=5),
)
# The last resort: one alert's title and status, a note, and nothing from the alert longer than 60 characters.
FLOOR = Limits(alerts=1, top=0, examples=0, codes=0, text=60, kql=False, listed=0, links=False)


def message(notification: Notification, public_url: str | None = None) -> dict[str, Any]:
    """The Workflows envelope with one card, the first rung of the ladder that fits the budget."""
    heading = incident_heading(notification)
    for limits in (*LADDER, FLOOR):
        envelope = envelope_for(card(notification.alerts, limits, public_url, heading))
        if size(envelope) < BUDGET_BYTES:
            return envelope
    return envelope_for(_minimal_card(notification.alerts))


def incident_heading(notification: Notification) -> dict[str, Any] | None:
    """The card's first line: the highest severity it holds (or RESOLVED), what happened, and how many alerts.

    Teams posts each notification as a new message, so an incident makes one card when it opens, one more only
    if it escalates (a critical must not hide in a warning card), and a resolved card when it ends."""
    if not notification.incident:
        return None
    alerts = len(notification.alerts) + notification.omitted
    count = f"{alerts} alert{'s' if alerts != 1 else ''}"
    if notification.reason == "resolved":
        lasted = duration(notification.created_at - notification.opened_at) if notification.opened_at else "unknown"
        text, colour, style = f"RESOLVED · incident over · {count} · lasted {lasted}", "Good", "good"
    else:
        severity = notification.severity
        verb = {"escalated": "escalated", "repeated": "still open"}.get(notification.reason, "opened")
        text = f"{severity.upper()} · incident {verb} · {count}"
        colour, style = _COLOURS.get(severity, "Warning"), _STYLES.get(severity, "warning")
    since = f"Since {when(notification.opened_at)}" if notification.opened_at else ""
    items = [{"type": "TextBlock", "text": text, "weight": "Bolder", "size": "Medium", "color": colour, "wrap": True}]
    if since:
        items.append({"type": "TextBlock", "text": since, "isSubtle": True, "size": "Small", "spacing": "None"})
    return {"type": "Container", "style": style, "bleed": True, "items": items}


def size(document: dict[str, Any]) -> int:
    return len(orjson.dumps(document))


def envelope_for(content: dict[str, Any]) -> dict[str, Any]:
    """The shape the 'When a Teams webhook request is received' flow iterates over (attachments[].content)."""
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": content}
        ],
    }


def card(
    alerts: Sequence[Alert], limits: Limits, public_url: str | None = None, heading: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One card for the alerts of a notification: firing ones in full, resolved ones short."""
    shown = list(alerts[: limits.alerts])
    body: list[dict[str, Any]] = [heading] if heading else []
    for index, alert in enumerate(shown):
        section = _resolved(alert, limits) if alert.status == "resolved" else _firing(alert, limits)
        body.append(_container(section, separator=index > 0 or bool(heading)))
    body.extend(_rest(alerts[limits.alerts :], limits))
    return _card(body, _actions(shown, limits, public_url))


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    content: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    if actions:
        content["actions"] = actions
    return content


def _container(items: list[dict[str, Any]], separator: bool) -> dict[str, Any]:
    container: dict[str, Any] = {"type": "Container", "items": items}
    if separator:
        container.update(separator=True, spacing="Large")
    return container


def _firing(alert: Alert, limits: Limits) -> list[dict[str, Any]]:
    items = [_header(alert, limits), *_text(plain(alert.summary, limits.text))]
    items.extend(_change(alert, limits))
    items.append(_facts(_firing_facts(alert, limits)))
    items.extend(_tops(alert, limits))
    items.extend(_codes(alert, limits))
    items.extend(_examples(alert, limits))
    return items


def _resolved(alert: Alert, limits: Limits) -> list[dict[str, Any]]:
    """The smaller card: what resolved, when, and how long it fired."""
    title = f"RESOLVED · {plain(alert.title or alert.rule, limits.text)}"
    facts = [
        ("Rule", plain(alert.rule, limits.text)),
        *_group_facts(alert, limits),
        ("Fired", when(alert.starts_at)),
        ("Resolved", when(alert.at)),
        ("Duration", duration(alert.at - alert.starts_at) if alert.starts_at else "unknown"),
    ]
    heading = {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "color": "Good", "wrap": True}
    return [heading, _facts(facts)]


def _header(alert: Alert, limits: Limits) -> dict[str, Any]:
    """Severity and enforcement first: the one line a phone notification shows."""
    severity = alert.severity.upper()
    enforcement = _ENFORCEMENT.get(alert.enforcement, plain(alert.enforcement, 40))
    title = plain(alert.title or alert.rule, limits.text)
    return {
        "type": "Container",
        "style": _STYLES.get(alert.severity, "warning"),
        "bleed": True,
        "items": [
            {
                "type": "TextBlock",
                "text": f"{severity} · {enforcement}",
                "weight": "Bolder",
                "size": "Small",
                "color": _COLOURS.get(alert.severity, "Warning"),
                "wrap": True,
            },
            {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Large", "wrap": True, "spacing": "None"},
        ],
    }


def _firing_facts(alert: Alert, limits: Limits) -> list[tuple[str, str]]:
    facts = [("Rule", plain(f"{alert.rule} ({alert.kind})" if alert.kind else alert.rule, limits.text))]
    facts.extend(_group_facts(alert, limits))
    facts.append(("Measured", _measured(alert)))
    if alert.window_seconds:
        facts.append(("Window", duration(alert.window_seconds)))
    if alert.signins:
        facts.append(("Sign-ins judged", f"{alert.signins:,} ({alert.unbound:,} unbound)"))
    facts.append(("Firing since", when(alert.starts_at or alert.at)))
    facts.append(("Fingerprint", plain(alert.fingerprint, 40)))
    return facts


def _change(alert: Alert, limits: Limits) -> Iterator[dict[str, Any]]:
    """The policy change the alert follows, and the way back: what on-call acts on first, so it comes first."""
    if alert.change:
        yield {
            "type": "TextBlock",
            "text": f"Policy change: {plain(alert.change, limits.text)}",
            "weight": "Bolder",
            "color": "Attention",
            "wrap": True,
        }
    if alert.way_back:
        yield _subheading("The way back")
        yield from _text("\n\n".join(f"- {plain(step, limits.text)}" for step in alert.way_back[:3]))


def _group_facts(alert: Alert, limits: Limits) -> list[tuple[str, str]]:
    return [(plain(k, 40), plain(v, limits.text)) for k, v in list(alert.group.items())[:8]]


def _measured(alert: Alert) -> str:
    value = _number(alert.current, alert.unit)
    if alert.baseline is None:
        return value
    return f"{value} (baseline {_number(alert.baseline, alert.unit)})"


def _number(value: float, unit: str) -> str:
    if unit == "share":
        return f"{value * 100:.1f} %"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _tops(alert: Alert, limits: Limits) -> Iterator[dict[str, Any]]:
    if limits.top <= 0:
        return
    for key, entries in alert.top.items():
        if not entries:
            continue
        name = _TOP_NAMES.get(key, f"Top {plain(key, 40)}")
        shown = entries[: limits.top]
        more = len(entries) - len(shown)
        yield _subheading(name + (f" (top {len(shown)} of {len(entries)})" if more else ""))
        yield _facts([(plain(item, limits.text), f"{count:,}") for item, count in shown])


def _codes(alert: Alert, limits: Limits) -> Iterator[dict[str, Any]]:
    if limits.codes <= 0 or not alert.codes:
        return
    yield _subheading("What the status codes mean")
    for entry in alert.codes[: limits.codes]:
        code = plain(str(entry.get("code", "?")), 12)
        yield from _text(f"**{code}**: {plain(str(entry.get('meaning', '')), limits.text)}")
        fix = plain(str(entry.get("fix", "")), limits.text)
        if fix:
            yield {"type": "TextBlock", "text": f"Fix: {fix}", "isSubtle": True, "wrap": True, "spacing": "None"}
    if len(alert.codes) > limits.codes:
        yield _note(f"{len(alert.codes) - limits.codes} more codes not shown.")


def _examples(alert: Alert, limits: Limits) -> Iterator[dict[str, Any]]:
    if limits.examples <= 0 or not alert.examples:
        return
    shown = [plain(e, 80) for e in alert.examples[: limits.examples]]
    yield _subheading("Example correlation IDs")
    yield {"type": "TextBlock", "text": "\n\n".join(shown), "fontType": "Monospace", "size": "Small", "wrap": True}
    if len(alert.examples) > len(shown):
        yield _note(f"{len(alert.examples) - len(shown)} more not shown.")


def _rest(alerts: Sequence[Alert], limits: Limits) -> Iterator[dict[str, Any]]:
    """Alerts that did not fit in full: named by title while room allows, then counted."""
    if not alerts:
        return
    named = alerts[: limits.listed]
    lines = [f"- {a.status.upper()} · {plain(a.severity, 20)} · {plain(a.title or a.rule, limits.text)}" for a in named]
    yield _subheading(f"{len(alerts)} more alerts in this notification")
    if lines:
        yield {"type": "TextBlock", "text": "\n".join(lines), "wrap": True, "size": "Small"}
    if len(alerts) > len(named):
        yield _note(f"{len(alerts) - len(named)} not listed; the message was trimmed to fit Teams' size limit.")


def _actions(alerts: Sequence[Alert], limits: Limits, public_url: str | None) -> list[dict[str, Any]]:
    """Buttons (Entra sign-in logs first) and, when room allows, the KQL query behind a 'show' button."""
    links: dict[str, str] = {}
    for alert in alerts if limits.links else ():
        for title, url in alert.links.items():
            if _usable_url(url) and url not in links.values():
                links.setdefault(clip(title, 40), url)
    if not any("sign-in" in title.lower() for title in links):
        links = {"Entra sign-in logs": ENTRA_SIGNIN_LOGS, **links}
    if public_url and _usable_url(public_url) and limits.links:
        links.setdefault("bindwatch", public_url)
    actions = [{"type": "Action.OpenUrl", "title": t, "url": u} for t, u in list(links.items())[:MAX_ACTIONS]]
    kql = next((a.kql for a in alerts if a.kql and a.status == "firing"), "")
    if limits.kql and kql:
        query = {"type": "TextBlock", "text": plain(kql, 3_000), "fontType": "Monospace", "size": "Small", "wrap": True}
        actions.append(
            {"type": "Action.ShowCard", "title": "KQL query", "card": {"type": "AdaptiveCard", "body": [query]}}
        )
    return actions


def _usable_url(url: str) -> bool:
    return url.startswith(("https://", "http://")) and len(url) <= MAX_URL and not any(c.isspace() for c in url)


def _minimal_card(alerts: Sequence[Alert]) -> dict[str, Any]:
    """Cannot exceed the budget whatever the alerts hold: fixed text and counts only."""
    firing = sum(a.status == "firing" for a in alerts)
    text = f"bindwatch: {firing} firing and {len(alerts) - firing} resolved alerts. Details did not fit in Teams."
    body = [{"type": "TextBlock", "text": text, "weight": "Bolder", "wrap": True}]
    return _card(body, [{"type": "Action.OpenUrl", "title": "Entra sign-in logs", "url": ENTRA_SIGNIN_LOGS}])


def _facts(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {"type": "FactSet", "facts": [{"title": title, "value": value or "-"} for title, value in pairs]}


def _subheading(text: str) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "weight": "Bolder", "spacing": "Medium", "wrap": True}


def _note(text: str) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "isSubtle": True, "size": "Small", "wrap": True, "spacing": "None"}


def _text(text: str) -> list[dict[str, Any]]:
    return [{"type": "TextBlock", "text": text, "wrap": True}] if text else []


_MARKDOWN = re.compile(r"[\\`*_\[\](){}<>#!|~]")
_LIST_MARKER = re.compile(r"^(\s*(?:\d+)?)([-+.)])", re.MULTILINE)


def plain(text: str, limit: int) -> str:
    """Outside text (names from the logs) as card text: clipped, then escaped so Teams shows it as it is.

    TextBlock and FactSet text is Markdown in Teams: an app named `[Re-register here](https://evil.example)`
    would become a link. Every Markdown character is backslash-escaped (CommonMark), and a line that would
    start a list has its marker escaped too.
    """
    escaped = _MARKDOWN.sub(lambda found: "\\" + found.group(), clip(text, limit))
    return _LIST_MARKER.sub(lambda found: found.group(1) + "\\" + found.group(2), escaped)


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when cut."""
    text = str(text)
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def when(at: float) -> str:
    if not at:
        return "unknown"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min" + (f" {secs} s" if secs else "")
    return f"{secs} s"


class TeamsNotifier(Redactor):
    """A Workflows 'When a Teams webhook request is received' URL; 2xx (usually 202) means the flow accepted it."""

    name = NAME

    def __init__(self, url: str, public_url: str | None = None) -> None:
        super().__init__([url])
        self._url = url  # no host check: these URLs have moved between domains before
        self._public_url = public_url

    def requests(self, notification: Notification, now: float) -> list[Outgoing]:
        body = orjson.dumps(message(notification, self._public_url))
        return [Outgoing("message", self._url, body, {"content-type": "application/json"})]

    def judge(self, answer: Answer) -> Outcome:
        """Legacy connectors answered a throttle with 200 and 'HTTP error 429' in the body: a retry, not a success."""
        if answer.status == 200 and "HTTP error 429" in answer.text:
            return "retry"
        return classify(answer)
