"""The Event Hub bindwatch reads from, and how its service's errors are told to people and to logs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from azure.core.exceptions import AzureError
from azure.eventhub.exceptions import EventHubError

SERVICE_ERRORS = (AzureError, EventHubError)  # what a hub or storage account that says no raises


@dataclass(frozen=True)
class Hub:
    namespace: str  # <name>.servicebus.windows.net
    name: str


def bare_host(namespace: str) -> str:
    """Accept what people paste (sb://, https://, a trailing slash); the SDK wants the host name only."""
    host = namespace.strip()
    for scheme in ("sb://", "https://", "amqps://"):
        host = host.removeprefix(scheme)
    return host.rstrip("/")


_SECRET = re.compile(r"(?i)\b(sig|se|skoid|AccountKey|SharedAccessKey|SharedAccessSignature)=[^;&\s]+")


def log_reason(error: BaseException) -> str:
    """For the logs: the type, HTTP status and service error code only (SDK messages can carry account URLs)."""
    status = getattr(error, "status_code", None)
    code = getattr(error, "error_code", None)
    return type(error).__name__ + (f" (HTTP {status})" if status else "") + (f" {code}" if code else "")


def describe_error(error: BaseException) -> str:
    """For the person at the terminal: the SDK's message names the claim or resource refused; keys and SAS masked."""
    text = " ".join(str(error).split())[:1000]
    text = _SECRET.sub(lambda match: f"{match.group(1)}=***", text)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
