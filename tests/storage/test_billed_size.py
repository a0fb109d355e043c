"""The billing formula `make bench-storage` sizes rows with (the figures in docs/deploy.md rest on it)."""

from __future__ import annotations

from bench.storage_size import billed_size


def test_each_type_is_counted_as_the_service_bills_it() -> None:
    row = {
        "PartitionKey": "p",
        "RowKey": "r",
        "Address": "Mountain View",  # 8 + 2 x 7 + (2 x 13 + 4)
        "Age": 23,  # 8 + 2 x 3 + 4 (Int32)
        "AmountDue": 200.23,  # 8 + 2 x 9 + 8 (Double)
        "b@odata.type": "Edm.Binary",
        "b": "eHg=",  # 8 + 2 x 1 + (2 + 4): two bytes
        "t": True,  # 8 + 2 x 1 + 1
        "big@odata.type": "Edm.Int64",
        "big": "9000000000",  # 8 + 2 x 3 + 8
    }
    assert billed_size(row) == 8 + 52 + 18 + 34 + 16 + 11 + 22


def test_strings_count_utf16_units_and_the_server_made_timestamp_is_in_the_overhead() -> None:
    plain = {"PartitionKey": "b00", "RowKey": "s|x", "n": "😀"}
    assert billed_size(plain) == 4 + 2 * 6 + (8 + 2 + 2 * 2 + 4)
    served = {**plain, "Timestamp@odata.type": "Edm.DateTime", "Timestamp": "2026-12-03T00:00:00Z", "odata.etag": "W/x"}
    assert billed_size(served) == billed_size(plain)
