"""Every destination, listed once: its name, the settings that turn it on, and how its notifier is built.

Routes in the rules file may name these destinations; a deployment uses the ones
whose settings are set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.settings import Settings

from . import pagerduty, teams, webhook
from .destination import Notifier


@dataclass(frozen=True, slots=True)
class Destination:
    name: str
    configured: Callable[[Settings], bool]
    build: Callable[[Settings], Notifier]


def _teams(settings: Settings) -> Notifier:
    assert settings.teams_webhook_url is not None
    return teams.TeamsNotifier(settings.teams_webhook_url.get_secret_value(), settings.public_url)


def _webhook(settings: Settings) -> Notifier:
    assert settings.webhook_url is not None
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    return webhook.WebhookNotifier(settings.webhook_url.get_secret_value(), secret, settings.public_url)


def _pagerduty(settings: Settings) -> Notifier:
    assert settings.pagerduty_routing_key is not None
    key = settings.pagerduty_routing_key.get_secret_value()
    return pagerduty.PagerDutyNotifier(key, settings.pagerduty_url, settings.public_url)


DESTINATIONS: tuple[Destination, ...] = (
    Destination(teams.NAME, lambda s: s.teams_webhook_url is not None, _teams),
    Destination(webhook.NAME, lambda s: s.webhook_url is not None, _webhook),
    Destination(pagerduty.NAME, lambda s: s.pagerduty_routing_key is not None, _pagerduty),
)
DESTINATION_NAMES: tuple[str, ...] = tuple(d.name for d in DESTINATIONS)


def configured(settings: Settings) -> list[str]:
    """The destinations with a setting: where alerts go when no route says otherwise."""
    return [d.name for d in DESTINATIONS if d.configured(settings)]


def notifiers_from_settings(settings: Settings) -> dict[str, Notifier]:
    """The configured destinations' notifiers by name; empty when none is set. Decodes ALERT_WEBHOOK_SECRET."""
    return {d.name: d.build(settings) for d in DESTINATIONS if d.configured(settings)}
