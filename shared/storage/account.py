"""The one storage-account choice: which account keeps state, rejected input and consumer checkpoints.

The host's own account (`AzureWebJobsStorage`) by default, so a deployment needs no
second account; `STATE_*` settings point elsewhere. Either a connection string
(Azurite in development and tests) or an identity: the same `__credential` and
`__clientId` settings the Functions host reads for its identity-based connection.
Tables, blobs and the standalone consumer's checkpoints all come from `account()`,
so they can never land in different accounts. Nothing here logs or echoes a
connection string or key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from azure.core.credentials import TokenCredential
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from shared.settings import ConfigurationError, Settings

Service = Literal["table", "blob"]

_NO_STORAGE = (
    "no storage for state: set AzureWebJobsStorage (a connection string), AzureWebJobsStorage__accountName or "
    "AzureWebJobsStorage__{service}ServiceUri (identity), or STATE_STORAGE_CONNECTION / STATE_{upper}_SERVICE_URI"
)


@dataclass(frozen=True)
class Account:
    """One storage service of the chosen account: a connection string, or an endpoint reached by identity."""

    endpoint: str | None = None
    connection: str | None = field(default=None, repr=False)  # may hold a key: never logged
    setting: str = ""  # the app setting the connection string came from, to name it in errors

    def describe(self) -> str:
        return self.endpoint or "the account in the storage connection string"


def account(settings: Settings, service: Service) -> Account:
    """The account for one service, in the Functions host's own order of precedence.

    A connection string set for bindwatch wins; then an explicit `STATE_*_SERVICE_URI` (it says "this account,
    by identity"); then the host's connection string; then the host's identity-based settings.
    """
    if settings.state_connection is not None:
        return Account(
            connection=settings.state_connection.get_secret_value().strip(), setting="STATE_STORAGE_CONNECTION"
        )
    state_uri = settings.state_table_uri if service == "table" else settings.state_blob_uri
    if state_uri:
        return Account(endpoint=state_uri)
    host = settings.host_storage.get_secret_value().strip() if settings.host_storage is not None else ""
    if host:
        return Account(connection=host, setting="AzureWebJobsStorage")
    endpoint = settings.host_table_uri if service == "table" else settings.host_blob_uri
    if not endpoint and settings.host_storage_account:
        # Public cloud with default DNS only, as the Functions host itself assumes for __accountName.
        endpoint = f"https://{settings.host_storage_account}.{service}.core.windows.net"
    if not endpoint:
        raise ConfigurationError(_NO_STORAGE.format(service=service, upper=service.upper()))
    return Account(endpoint=endpoint)


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
    """The Table service that keeps state; `options` go to the client (tests pass a counting transport)."""
    chosen = account(settings, "table")
    if chosen.connection is not None:
        with _named(chosen):
            return TableServiceClient.from_connection_string(chosen.connection, **options)
    return TableServiceClient(endpoint=chosen.endpoint or "", credential=credential(settings), **options)


def blob_service(settings: Settings, **options: Any) -> BlobServiceClient:
    """The Blob service that keeps rejected input and checkpoints (the same account as the tables)."""
    chosen = account(settings, "blob")
    if chosen.connection is not None:
        with _named(chosen):
            return BlobServiceClient.from_connection_string(chosen.connection, **options)
    return BlobServiceClient(account_url=chosen.endpoint or "", credential=credential(settings), **options)


@contextlib.contextmanager
def _named(chosen: Account) -> Iterator[None]:
    """A malformed connection string stops the start naming its setting (the SDK's message may quote it)."""
    try:
        yield
    except ValueError:
        raise ConfigurationError(f"setting {chosen.setting}: not a valid storage connection string") from None
