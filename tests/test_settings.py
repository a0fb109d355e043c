"""One validated configuration: bad values stop the start naming the setting, never echoing a secret."""

from __future__ import annotations

import pytest

from shared.settings import ConfigurationError, load_settings


def test_defaults_serve_without_configuration() -> None:
    settings = load_settings()
    assert settings.settle_minutes == 10 and settings.retention_days == 7
    assert settings.eventhub_name == "insights-logs-signinlogs"
    assert settings.signin_buckets == 8


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SETTLE_MINUTES", "-1"),
        ("SETTLE_MINUTES", "ten"),
        ("RETENTION_DAYS", "0"),
        ("ALERT_PAGERDUTY_URL", "ftp://example"),
        ("REJECTED_CONTAINER", "Bad_Name"),
        ("STATE_TABLE_PREFIX", "1abc"),
        ("STATE_SIGNIN_BUCKETS", "0"),
        ("STATE_SIGNIN_BUCKETS", "101"),
        ("STATE_SIGNIN_BUCKETS", "8.5"),
        ("STATE_SIGNIN_BUCKETS", "eight"),
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


@pytest.mark.parametrize("name", ["ALERT_WEBHOOK_URL", "ALERT_TEAMS_WEBHOOK_URL"])
@pytest.mark.parametrize(
    "value",
    ["not-a-url", "ftp://hooks.example/x", "http://hooks.example.net/x?token=SECRETTOKEN", "https://", "//x/y"],
)
def test_a_destination_url_must_be_https(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=f"setting {name}: must be") as raised:
        load_settings()
    assert "SECRETTOKEN" not in str(raised.value) and "hooks.example" not in str(raised.value)


@pytest.mark.parametrize(
    "value",
    ["https://prod-12.westeurope.logic.azure.com/workflows/x", "http://localhost:8080/in", "http://127.0.0.1/x"],
)
def test_https_urls_and_local_receivers_pass(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ALERT_WEBHOOK_URL", value)
    settings = load_settings()
    assert settings.webhook_url is not None and settings.webhook_url.get_secret_value() == value


def test_a_short_webhook_secret_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    from shared.functions import start
    from shared.settings import current_settings

    monkeypatch.setenv("ALERT_WEBHOOK_URL", "https://hooks.example.invalid/x")
    monkeypatch.setenv("ALERT_WEBHOOK_SECRET", "whsec_" + base64.b64encode(b"only-16-bytes!!!").decode())
    current_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match=r"setting ALERT_WEBHOOK_SECRET: 16 bytes .* at least 24"):
            start()
        monkeypatch.setenv("ALERT_WEBHOOK_SECRET", "whsec_" + base64.b64encode(b"x" * 24).decode())
        current_settings.cache_clear()
        start()
    finally:
        current_settings.cache_clear()


@pytest.mark.parametrize("text", ["", "# only a comment\n", "[defaults]\nrepeat_interval = '4h'\n"])
def test_a_rules_file_without_rules_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory, text: str
) -> None:
    from shared.functions import start
    from shared.settings import current_settings

    rules = tmp_path / "rules.toml"  # type: ignore[operator]
    rules.write_text(text)
    monkeypatch.setenv("RULES_FILE", str(rules))
    current_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match=r"no rules at all.*`rules = \[\]`"):
            start()
    finally:
        current_settings.cache_clear()


def test_an_explicit_empty_rules_list_starts_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    from shared.functions import start
    from shared.settings import current_settings

    rules = tmp_path / "rules.toml"  # type: ignore[operator]
    rules.write_text("rules = []\n")
    monkeypatch.setenv("RULES_FILE", str(rules))
    current_settings.cache_clear()
    try:
        start()
    finally:
        current_settings.cache_clear()
    assert "alerting is off" in caplog.text


@pytest.mark.parametrize(
    ("name", "value"),
    [("LOOKUP_ALLOWED_GROUP", "on-call"), ("WEBSITE_AUTH_ENABLED", "maybe"), ("LOOKUP_AUTH_ENABLED", "perhaps")],
)
def test_lookup_access_settings_are_checked(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=f"setting {name}:"):
        load_settings()


@pytest.mark.parametrize(
    ("platform", "deployed", "trusted"),
    [
        (None, None, False),
        (None, "true", True),
        ("True", None, True),
        ("False", "true", False),
        ("True", "false", True),
    ],
)
def test_the_platforms_word_on_app_service_authentication_wins(
    monkeypatch: pytest.MonkeyPatch, platform: str | None, deployed: str | None, trusted: bool
) -> None:
    """WEBSITE_AUTH_ENABLED (the platform) decides when present; LOOKUP_AUTH_ENABLED (the Bicep) stands in otherwise."""
    from shared.app.compose import lookup_access

    for name, value in (("WEBSITE_AUTH_ENABLED", platform), ("LOOKUP_AUTH_ENABLED", deployed)):
        if value is not None:
            monkeypatch.setenv(name, value)
    assert lookup_access(load_settings()).auth_enabled is trusted


def test_the_bucket_count_is_read_from_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_SIGNIN_BUCKETS", "32")
    assert load_settings().signin_buckets == 32
