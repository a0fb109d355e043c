"""Entity group transactions written by `entity.submit`: the SDK's operations, conditions and errors, on Azurite."""

from __future__ import annotations

import json

import pytest
from azure.core import MatchConditions
from azure.data.tables import TableServiceClient, TableTransactionError, UpdateMode
from azure.data.tables._table_batch import TableBatchOperations

from shared.storage.entity import entity_json, operation, submit, transaction_body, transaction_results

ETAG = "W/\"datetime'2026-03-10T08%3A00%3A00.0000000Z'\""
OPS = [
    ("create", {"PartitionKey": "b'1", "RowKey": "s|a:b@c+d=e é", "n": 1, "f": 1.5, "b": True, "s": "x"}),
    ("update", {"PartitionKey": "b'1", "RowKey": "s|x", "n": 2}, {"mode": UpdateMode.REPLACE}),
    (
        "update",
        {"PartitionKey": "b'1", "RowKey": "s|y"},
        {"etag": ETAG, "match_condition": MatchConditions.IfNotModified, "mode": UpdateMode.REPLACE},
    ),
    ("update", {"PartitionKey": "b'1", "RowKey": "s|z", "t": "u"}, {"mode": UpdateMode.MERGE}),
    ("upsert", {"PartitionKey": "b'1", "RowKey": "f|1"}, {"mode": UpdateMode.REPLACE}),
    ("upsert", {"PartitionKey": "b'1", "RowKey": "r|1", "signin_row": "s|1"}),
    (
        "delete",
        {"PartitionKey": "b'1", "RowKey": "d|1"},
        {"etag": ETAG, "match_condition": MatchConditions.IfNotModified},
    ),
    ("delete", {"PartitionKey": "b'1", "RowKey": "s|2"}),
]


def test_each_operation_is_the_request_the_sdk_would_send() -> None:
    """Method, URL, condition and typed JSON body as azure-data-tables builds them for submit_transaction."""
    client = TableServiceClient.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:1/a;"
    ).get_table_client("tbl")
    sdk = TableBatchOperations(
        config=client._client._config, endpoint="http://127.0.0.1:1/a", table_name="tbl", is_cosmos_endpoint=False
    )
    for op in OPS:
        sdk.add_operation(op)
    for op, request in zip(OPS, sdk.requests, strict=True):
        method, path, headers, payload = operation("tbl", op)
        assert (method, f"http://127.0.0.1:1/a/{path}") == (request.method, request.url)
        assert headers.get("If-Match") == request.headers.get("If-Match")
        sent = json.loads(request.content) if request.content else None
        assert (json.loads(payload) if payload is not None else None) == untyped_strings(sent)


def untyped_strings(body: dict | None) -> dict | None:
    """The SDK marks every string Edm.String; the service reads an unmarked JSON string as one all the same."""
    return body and {k: v for k, v in body.items() if not (k.endswith("@odata.type") and v == "Edm.String")}


def test_values_beyond_the_common_kinds_are_typed_by_the_sdk() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert json.loads(entity_json({"PartitionKey": "p", "RowKey": "r", "at": at}))["at@odata.type"] == "Edm.DateTime"
    with pytest.raises(TypeError):  # as submit_transaction refuses it: past Int32, say EntityProperty(..., INT64)
        entity_json({"PartitionKey": "p", "RowKey": "r", "big": 2**40})
    nan = json.loads(entity_json({"PartitionKey": "p", "RowKey": "r", "x": float("nan"), "none": None}))
    assert nan["x"] == "NaN" and nan["x@odata.type"] == "Edm.Double" and "none" not in nan


def test_the_first_failed_operation_is_raised_with_its_status_code_and_index() -> None:
    answer = (
        "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
        "--changesetresponse_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "HTTP/1.1 412 Precondition Failed\r\nContent-ID: 2\r\nContent-Type: application/json\r\n\r\n"
        '{"odata.error":{"code":"UpdateConditionNotSatisfied","message":{"lang":"en-US","value":"1:The update '
        'condition specified in the request was not satisfied."}}}\r\n'
        "--changesetresponse_2--\r\n--batchresponse_1--\r\n"
    )
    with pytest.raises(TableTransactionError) as raised:
        transaction_results(answer, 3)
    assert (raised.value.status_code, raised.value.error_code, raised.value.index) == (
        412,
        "UpdateConditionNotSatisfied",
        1,
    )


def test_an_answer_with_too_few_parts_is_an_error_not_a_success() -> None:
    answer = (
        "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n"
        "--c\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n--c--\r\n--b--"
    )
    assert transaction_results(answer, 1) == [{}]
    with pytest.raises(TableTransactionError):
        transaction_results(answer, 2)


def test_the_body_carries_each_operation_once_in_order() -> None:
    body = transaction_body("http://h/a", "tbl", OPS, "batch_x", "changeset_y").decode()
    assert body.startswith("--batch_x\r\nContent-Type: multipart/mixed; boundary=changeset_y")
    assert body.count("--changeset_y\r\n") == len(OPS) and body.rstrip().endswith("--changeset_y--\r\n--batch_x--")
    assert [line.split(" ", 1)[0] for line in body.splitlines() if line.endswith(" HTTP/1.1")] == [
        "POST",
        "PUT",
        "PUT",
        "PATCH",
        "PUT",
        "PATCH",
        "DELETE",
        "DELETE",
    ]


def test_conditions_hold_on_azurite(storage_connection: str, table_prefix: str) -> None:
    """Insert-if-absent, If-Match an ETag, and update-if-present fail the whole transaction, as the SDK's did."""
    table = TableServiceClient.from_connection_string(storage_connection).create_table(f"{table_prefix}tx")
    (created, upserted) = submit(
        table,
        [
            ("create", {"PartitionKey": "p", "RowKey": "it's é", "n": 1, "f": 0.5, "s": "lone \ud800"}),
            ("upsert", {"PartitionKey": "p", "RowKey": "r"}, {"mode": UpdateMode.REPLACE}),
        ],
    )
    stored = table.get_entity("p", "it's é")
    assert created["etag"] == stored.metadata["etag"] and upserted["etag"]
    assert (stored["n"], stored["f"], stored["s"]) == (1, 0.5, "lone \ud800")
    for ops, status in (
        ([("create", {"PartitionKey": "p", "RowKey": "new"}), ("create", {"PartitionKey": "p", "RowKey": "r"})], 409),
        ([("update", {"PartitionKey": "p", "RowKey": "gone"}, {"mode": UpdateMode.REPLACE})], 404),
        (
            [
                (
                    "delete",
                    {"PartitionKey": "p", "RowKey": "r"},
                    {"etag": ETAG, "match_condition": MatchConditions.IfNotModified},
                )
            ],
            412,
        ),
    ):
        with pytest.raises(TableTransactionError) as raised:
            submit(table, ops)
        assert raised.value.status_code == status
    assert sorted(e["RowKey"] for e in table.list_entities()) == ["it's é", "r"]  # nothing of a failed one landed
    condition = {"etag": created["etag"], "match_condition": MatchConditions.IfNotModified, "mode": UpdateMode.MERGE}
    submit(
        table,
        [
            ("update", {"PartitionKey": "p", "RowKey": "it's é", "m": 2}, condition),
            ("delete", {"PartitionKey": "p", "RowKey": "r"}),
        ],
    )
    assert [(e["n"], e["m"]) for e in table.list_entities()] == [(1, 2)]
