"""The suite's storage is a real Azurite: prove it answers the Table and Blob APIs."""

from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient


def test_azurite_serves_tables_and_blobs(storage_connection: str, table_prefix: str) -> None:
    tables = TableServiceClient.from_connection_string(storage_connection)
    table = tables.create_table(table_prefix)
    table.create_entity({"PartitionKey": "p", "RowKey": "r", "value": 1})
    assert table.get_entity("p", "r")["value"] == 1
    blobs = BlobServiceClient.from_connection_string(storage_connection)
    container = blobs.create_container(table_prefix)
    container.upload_blob("x", b"hello")
    assert container.download_blob("x").readall() == b"hello"
