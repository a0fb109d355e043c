"""Clients for the storage account that keeps state and rejected input, built from the settings.

The host's own account (`AzureWebJobsStorage`) by default, so a deployment needs no
second account; `STATE_*` settings point elsewhere. Either a connection string
(Azurite in development and tests) or an identity: the same `__credential` and
`__clientId` settings the Functions host reads for its identity-based connection.
Nothing here logs or echoes a connection string or key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from azure.core.credentials import TokenCredential
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from .settings import ConfigurationError, Settings

_NO_STORAGE = (
    "no storage for state: set AzureWebJobsStorage (a connection string), AzureWebJobsStorage__accountName or "
    "AzureWebJobsStorage__tableServiceUri (identity), or STATE_STORAGE_CONNECTION / STATE_TABLE_SERVICE_URI"
)


def _connection_string(settings: Settings) -> str | None:
    """A connection string, when one is configured (ours first, then the host's)."""
    for secret in (settings.state_connection, settings.host_storage):
        if secret is not None and secret.get_secret_value().strip():
            return secret.get_secret_value().strip()
    return None


def _endpoint(settings: Settings, service: str) -> str | None:
    """The service URI for identity-based access: STATE_* first, then AzureWebJobsStorage__*."""
    ours = settings.state_table_uri if service == "table" else settings.state_blob_uri
    host = settings.host_table_uri if service == "table" else settings.host_blob_uri
    if ours or host:
        return ours or host
    if settings.host_storage_account:
        # Public cloud with default DNS only, as the Functions host itself assumes for __accountName.
        return f"https://{settings.host_storage_account}.{service}.core.windows.net"
    return None


def credential(settings: Settings) -> TokenCredential:
    """The managed identity the host uses (`__credential=managedidentity`), else the developer's identity chain."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if (settings.host_credential or "").lower() == "managedidentity":
        if settings.host_client_id:
            return ManagedIdentityCredential(client_id=settings.host_client_id)
        return ManagedIdentityCredential()
    if settings.host_client_id:
        return DefaultAzureCredential(managed_identity_client_id=settings.host_client_id)
    return DefaultAzureCredential()


def table_service(settings: Settings, **options: Any) -> TableServiceClient:
    """The Table service that keeps sign-in state; `options` go to the client (tests pass a counting transport)."""
    connection, endpoint = _account(settings, "table", settings.state_table_uri)
    if connection is not None:
        with _named(settings):
            return TableServiceClient.from_connection_string(connection, **options)
    return TableServiceClient(endpoint=endpoint, credential=credential(settings), **options)


def blob_service(settings: Settings, **options: Any) -> BlobServiceClient:
    """The Blob service that keeps rejected input (same account choice as the tables)."""
    connection, endpoint = _account(settings, "blob", settings.state_blob_uri)
    if connection is not None:
        with _named(settings):
            return BlobServiceClient.from_connection_string(connection, **options)
    return BlobServiceClient(account_url=endpoint, credential=credential(settings), **options)


@contextlib.contextmanager
def _named(settings: Settings) -> Iterator[None]:
    """A malformed connection string stops the start naming its setting (the SDK's message may quote it)."""
    name = "STATE_STORAGE_CONNECTION" if settings.state_connection is not None else "AzureWebJobsStorage"
    try:
        yield
    except ValueError:
        raise ConfigurationError(f"setting {name}: not a valid storage connection string") from None


def _account(settings: Settings, service: str, state_uri: str | None) -> tuple[str | None, str]:
    """(connection string, None) or (None, endpoint for an identity) for one storage service.

    A connection string set for us wins over the host's identity settings; an explicit URI wins over the
    host's connection string (it says "this account, by identity").
    """
    if settings.state_connection is not None:
        return _connection_string(settings) or "", ""
    connection = None if state_uri else _connection_string(settings)
    if connection:
        return connection, ""
    endpoint = state_uri or _endpoint(settings, service)
    if not endpoint:
        raise ConfigurationError(_NO_STORAGE if service == "table" else _NO_STORAGE.replace("TABLE", "BLOB"))
    return None, endpoint
