"""Which account and which credential state uses: the host's storage by default, STATE_* to point elsewhere."""

from __future__ import annotations

import argparse

import pytest
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

from shared.cli.eventhub import checkpoint_location
from shared.settings import ConfigurationError, load_settings
from shared.storage.account import blob_service, table_service

OTHER = (
    "DefaultEndpointsProtocol=https;AccountName=otheraccount;AccountKey=c2VjcmV0LWtleS1ub3QtcmVhbA==;"
    "EndpointSuffix=core.windows.net"
)


def test_the_hosts_connection_string_is_the_default(storage_connection: str) -> None:
    settings = load_settings(AzureWebJobsStorage=storage_connection)
    assert table_service(settings).account_name == "devstoreaccount1"
    assert blob_service(settings).account_name == "devstoreaccount1"


def test_a_state_connection_string_wins_over_the_hosts(storage_connection: str) -> None:
    settings = load_settings(AzureWebJobsStorage=storage_connection, STATE_STORAGE_CONNECTION=OTHER)
    assert table_service(settings).url.startswith("https://otheraccount.table.core.windows.net")
    assert blob_service(settings).url.startswith("https://otheraccount.blob.core.windows.net")


def test_identity_by_account_name_with_a_user_assigned_identity() -> None:
    settings = load_settings(
        AzureWebJobsStorage__accountName="hostaccount",
        AzureWebJobsStorage__credential="managedidentity",
        AzureWebJobsStorage__clientId="00000000-0000-0000-0000-000000000001",
    )
    tables = table_service(settings)
    assert tables.url.startswith("https://hostaccount.table.core.windows.net")
    assert isinstance(tables.credential, ManagedIdentityCredential)
    assert blob_service(settings).url.startswith("https://hostaccount.blob.core.windows.net")


def test_service_uris_win_over_the_account_name_and_a_connection_string(storage_connection: str) -> None:
    settings = load_settings(
        AzureWebJobsStorage=storage_connection,
        AzureWebJobsStorage__accountName="hostaccount",
        STATE_TABLE_SERVICE_URI="https://state.table.core.windows.net",
        STATE_BLOB_SERVICE_URI="https://state.blob.core.windows.net",
    )
    tables = table_service(settings)
    assert tables.url.startswith("https://state.table.core.windows.net")
    assert isinstance(tables.credential, DefaultAzureCredential)  # a developer's identity, no __credential set
    assert blob_service(settings).url.startswith("https://state.blob.core.windows.net")
    hosts = load_settings(AzureWebJobsStorage__tableServiceUri="https://host.table.core.windows.net")
    assert table_service(hosts).url.startswith("https://host.table.core.windows.net")


def test_no_storage_configured_names_the_settings_and_no_secret() -> None:
    with pytest.raises(ConfigurationError, match="AzureWebJobsStorage") as raised:
        table_service(load_settings())
    assert "AccountKey" not in str(raised.value)
    with pytest.raises(ConfigurationError, match="STATE_BLOB_SERVICE_URI"):
        blob_service(load_settings())


SETTING_MIXES = [
    {"AzureWebJobsStorage": OTHER, "AzureWebJobsStorage__accountName": "hostaccount"},
    {"AzureWebJobsStorage": OTHER, "AzureWebJobsStorage__blobServiceUri": "https://hostblob.blob.core.windows.net"},
    {"STATE_STORAGE_CONNECTION": OTHER, "STATE_BLOB_SERVICE_URI": "https://state.blob.core.windows.net"},
    {"STATE_BLOB_SERVICE_URI": "https://state.blob.core.windows.net", "AzureWebJobsStorage": OTHER},
    {"AzureWebJobsStorage__accountName": "hostaccount"},
]


@pytest.mark.parametrize("values", SETTING_MIXES)
def test_consumer_checkpoints_and_dead_letters_share_one_account(values: dict[str, str]) -> None:
    """With several storage settings present, the consumer's checkpoints land where the dead letters do."""
    settings = load_settings(**values)
    args = argparse.Namespace(checkpoint_container="ck", checkpoint_account_url=None)
    location = checkpoint_location(args, settings)
    blobs = blob_service(settings)
    if location.connection is not None:
        assert location.connection == OTHER
        assert blobs.account_name == "otheraccount"
    else:
        assert location.account_url is not None
        assert blobs.url.rstrip("/") == location.account_url.rstrip("/")
