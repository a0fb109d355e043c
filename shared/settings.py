"""The one validated configuration of bindwatch.

Every app setting the code reads is a field here, named by its alias exactly as
it appears in the Function App's settings (and in `infra/`). A bad value stops
the start with a message that names the setting, never with a stack trace deep
in the pipeline.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigurationError(ValueError):
    """A setting is missing or wrong; the message names it and never echoes a secret."""


class Settings(BaseSettings):
    """App settings, read from the environment (and `.env` for local runs)."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        case_sensitive=True,
        hide_input_in_errors=True,
    )

    # --- Event Hub (the trigger itself reads EventHubConnection__* through the host) ---
    eventhub_name: str = Field("insights-logs-signinlogs", alias="SIGNIN_EVENTHUB_NAME", min_length=1)
    eventhub_consumer_group: str = Field("bindwatch", alias="SIGNIN_EVENTHUB_CONSUMER_GROUP", min_length=1)
    eventhub_namespace: str | None = Field(None, alias="EventHubConnection__fullyQualifiedNamespace")

    # --- Correlation ---
    settle_minutes: float = Field(10.0, alias="SETTLE_MINUTES", gt=0, le=24 * 60)

    # --- State (Azure Table Storage; the host's account unless STATE_STORAGE_* says otherwise) ---
    host_storage: SecretStr | None = Field(None, alias="AzureWebJobsStorage")
    host_storage_account: str | None = Field(None, alias="AzureWebJobsStorage__accountName")
    host_table_uri: str | None = Field(None, alias="AzureWebJobsStorage__tableServiceUri")
    host_blob_uri: str | None = Field(None, alias="AzureWebJobsStorage__blobServiceUri")
    host_credential: str | None = Field(None, alias="AzureWebJobsStorage__credential")
    host_client_id: str | None = Field(None, alias="AzureWebJobsStorage__clientId")
    state_connection: SecretStr | None = Field(None, alias="STATE_STORAGE_CONNECTION")
    state_table_uri: str | None = Field(None, alias="STATE_TABLE_SERVICE_URI")
    state_blob_uri: str | None = Field(None, alias="STATE_BLOB_SERVICE_URI")
    state_table_prefix: str = Field("bindwatch", alias="STATE_TABLE_PREFIX", pattern=r"^[A-Za-z][A-Za-z0-9]{2,40}$")
    rejected_container: str = Field(
        "bindwatch-rejected", alias="REJECTED_CONTAINER", pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"
    )
    retention_days: float = Field(7.0, alias="RETENTION_DAYS", gt=0, le=3650)
    # Hash-bucket partitions of the sign-in table, sized from the expected rate (docs/capacity.md). Fixed for the life
    # of a table: the table records its count, and an instance configured otherwise refuses to start.
    signin_buckets: int = Field(8, alias="STATE_SIGNIN_BUCKETS", ge=1, le=100)
    # One invocation's work, well inside host.json's functionTimeout (10 min): past it, the rest is retried by the
    # host, or dead-lettered on the last try, instead of being cut off by a timeout with no trace.
    invocation_budget_seconds: float = Field(300.0, alias="INVOCATION_BUDGET_SECONDS", gt=0, le=3600)

    # --- Detection ---
    rules_file: Path | None = Field(None, alias="RULES_FILE")

    # --- Delivery (secrets: never logged, never in an exception text) ---
    teams_webhook_url: SecretStr | None = Field(None, alias="ALERT_TEAMS_WEBHOOK_URL")
    webhook_url: SecretStr | None = Field(None, alias="ALERT_WEBHOOK_URL")
    webhook_secret: SecretStr | None = Field(None, alias="ALERT_WEBHOOK_SECRET")
    pagerduty_routing_key: SecretStr | None = Field(None, alias="ALERT_PAGERDUTY_ROUTING_KEY")
    pagerduty_url: str = Field(
        "https://events.pagerduty.com/v2/enqueue", alias="ALERT_PAGERDUTY_URL", pattern=r"^https?://"
    )

    # --- Microsoft Graph (`python -m shared pull`) ---
    graph_url: str = Field("https://graph.microsoft.com", alias="GRAPH_URL", pattern=r"^https?://[^?#]+$")
    graph_access_token: SecretStr | None = Field(None, alias="GRAPH_ACCESS_TOKEN")

    # --- Links for people ---
    public_url: str | None = Field(None, alias="BINDWATCH_PUBLIC_URL", pattern=r"^https?://")

    # --- Who may open the on-call lookup (docs/lookup.md); the platform sets WEBSITE_AUTH_ENABLED ---
    lookup_allowed_role: str | None = Field(None, alias="LOOKUP_ALLOWED_ROLE", max_length=120)
    lookup_allowed_group: str | None = Field(
        None, alias="LOOKUP_ALLOWED_GROUP", pattern=r"^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$"
    )
    website_auth_enabled: bool | None = Field(None, alias="WEBSITE_AUTH_ENABLED")  # set by the platform itself
    lookup_auth_enabled: bool = Field(False, alias="LOOKUP_AUTH_ENABLED")  # set by the Bicep that switches it on

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """An empty app setting means 'not set', so its default applies (Bicep and portals write empty strings)."""
        if isinstance(value, str) and not value.strip():
            raise PydanticUseDefault
        return value

    @field_validator("teams_webhook_url", "webhook_url", mode="after")
    @classmethod
    def _https_url(cls, value: SecretStr | None) -> SecretStr | None:
        """A destination URL must be https (http only to this machine, for local receivers); checked at start."""
        if value is not None:
            problem = url_problem(value.get_secret_value())
            if problem:
                raise ValueError(problem)  # the message never contains the URL: it is a secret
        return value

    @property
    def settle_seconds(self) -> float:
        return self.settle_minutes * 60.0


def url_problem(url: str) -> str | None:
    """Why this destination URL cannot work, or None. Never quotes the URL (webhook URLs carry tokens)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("https", "http") or not host:
        return "must be an https:// URL with a host name"
    if parts.scheme == "http" and not _loopback(host):
        return "must be https:// (plain http is accepted only for localhost, for local receivers)"
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings, or raise ConfigurationError naming the bad ones."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigurationError(describe(error)) from None


def describe(error: ValidationError) -> str:
    """Name each bad setting by its app-setting name and say what is wrong, without its value."""
    aliases = {name: field.alias or name for name, field in Settings.model_fields.items()}
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        where = item["loc"][0] if item["loc"] else "?"
        name = aliases.get(str(where), str(where))
        problems.append(f"setting {name}: {str(item['msg']).removeprefix('Value error, ')}")
    return "invalid configuration: " + "; ".join(problems)


@lru_cache(maxsize=1)
def current_settings() -> Settings:
    """The process-wide settings, read once (the function host's settings do not change while it runs)."""
    return load_settings()
