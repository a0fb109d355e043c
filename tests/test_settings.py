"""One validated configuration: bad values stop the start naming the setting, never echoing a secret."""

from __future__ import annotations

import pytest

from shared.settings import ConfigurationError, load_settings


def test_defaults_serve_without_configuration() -> None:
    settings = load_settings()
    assert settings.settle_minutes == 10 and settings.retention_days == 7
    assert settings.eventhub_name == "insights-logs-signinlogs"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SETTLE_MINUTES", "-1"),
        ("SETTLE_MINUTES", "ten"),
        ("RETENTION_DAYS", "0"),
        ("ALERT_PAGERDUTY_URL", "ftp://example"),
        ("REJECTED_CONTAINER", "Bad_Name"),
        ("STATE_TABLE_PREFIX", "1abc"),
    ],
)
def test_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=f"setting {name}:"):
        load_settings()


def test_secrets_never_appear_in_errors_or_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "https://prod.example/workflows/abc?sig=TOPSECRET"
    monkeypatch.setenv("ALERT_TEAMS_WEBHOOK_URL", secret)
    monkeypatch.setenv("SETTLE_MINUTES", "x")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "TOPSECRET" not in str(caught.value)
    monkeypatch.setenv("SETTLE_MINUTES", "5")
    settings = load_settings()
    assert "TOPSECRET" not in repr(settings)
    assert settings.teams_webhook_url is not None and settings.teams_webhook_url.get_secret_value() == secret


def test_empty_app_settings_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "")
    monkeypatch.setenv("SIGNIN_EVENTHUB_NAME", " ")
    monkeypatch.setenv("SETTLE_MINUTES", "")
    settings = load_settings()
    assert settings.webhook_url is None
    assert (settings.eventhub_name, settings.settle_minutes) == ("insights-logs-signinlogs", 10.0)


def test_a_bad_webhook_secret_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.functions import start
    from shared.settings import current_settings

    monkeypatch.setenv("ALERT_WEBHOOK_URL", "https://hooks.example.invalid/x")
    monkeypatch.setenv("ALERT_WEBHOOK_SECRET", "whsec_not base64!!")
    current_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match="setting ALERT_WEBHOOK_SECRET"):
            start()
    finally:
        current_settings.cache_clear()


def test_a_malformed_connection_string_names_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.storage.account import table_service

    monkeypatch.setenv("AzureWebJobsStorage", "AccountName=x;AccountKey=SECRETKEYVALUE;Nonsense")
    with pytest.raises(ConfigurationError, match="setting AzureWebJobsStorage") as raised:
        table_service(load_settings())
    assert "SECRETKEYVALUE" not in str(raised.value)
