"""Every reader of outside input, held to two promises: nothing crashes it, and nothing it reads is lost."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core.message import NOT_DECODED, Message, Origin
from shared.core.record import Reading, Shape, read_message
from shared.core.request import judge
from shared.core.timestamp import parse_time
from shared.ingest.chunks import as_utf8, inflated, lines
from shared.ingest.csv_rows import csv_rows
from shared.ingest.files import Source, read_source
from shared.ingest.json_stream import json_items
from shared.ingest.order import in_time_order
from tests.core.test_record import fields, json_values

MANY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    """The data cut where the sizes say, as a pipe or a blob download would hand it over."""
    out, at = [], 0
    for size in sizes:
        if at >= len(data):
            break
        out.append(data[at : at + size])
        at += size
    if at < len(data):
        out.append(data[at:])
    return out


cuts = st.lists(st.integers(min_value=1, max_value=64), max_size=40)


@MANY
@given(st.binary(max_size=400), cuts)
def test_inflate_passes_plain_bytes_and_never_crashes_on_broken_gzip(data: bytes, sizes: list[int]) -> None:
    assert b"".join(inflated(chunked(data, sizes))) == data or data.startswith(b"\x1f\x8b")
    b"".join(inflated(chunked(b"\x1f\x8b" + data, sizes)))  # a broken member ends the input, it does not raise


@MANY
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=3), cuts)
def test_gzip_members_inflate_to_what_was_compressed(parts: list[bytes], sizes: list[int]) -> None:
    packed = b"".join(gzip.compress(part) for part in parts)
    assert b"".join(inflated(chunked(packed, sizes))) == b"".join(parts)


@MANY
@given(
    # Lone surrogates cannot be encoded at all, so no file holds them; the reader's own
    # handling of undecodable bytes is the next test's job.
    st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=200),
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
    cuts,
)
def test_every_encoding_comes_out_as_utf8(text: str, encoding: str, sizes: list[int]) -> None:
    """NUL-free text (JSON and CSV have none) in UTF-8, UTF-8 with a BOM, or UTF-16 with one."""
    assert b"".join(as_utf8(chunked(text.encode(encoding), sizes))) == text.encode("utf-8")


@MANY
@given(st.binary(max_size=400), cuts)
def test_lines_keep_every_non_blank_line(data: bytes, sizes: list[int]) -> None:
    got = [line for _, line in lines(chunked(data, sizes), max_line=1 << 20)]
    assert got == [line for line in data.split(b"\n") if line.strip()]


documents = st.lists(json_values, max_size=6)


@MANY
@given(documents, st.sampled_from(["array", "lines", "pretty", "glued"]), cuts)
def test_json_values_come_out_whole_however_they_are_written_and_cut(
    values: list, layout: str, sizes: list[int]
) -> None:
    if layout == "array":
        data = json.dumps(values, indent=1).encode()
    elif layout == "glued":
        data = b"".join(json.dumps(values[i : i + 2]).encode() for i in range(0, len(values), 2))
    else:
        data = b"\n".join(json.dumps(v, indent=2 if layout == "pretty" else None).encode() for v in values)
    items = list(json_items(chunked(data, sizes)))
    got = [item.document for item in items]
    if layout in ("array", "glued"):
        assert got == values
    else:
        # A top-level array among the values is split into its elements: compare what each value holds.
        assert got == [e for v in values for e in (v if isinstance(v, list) else [v])]
    for item in items:
        assert json.loads(item.raw) == item.document


@MANY
@given(st.binary(max_size=300), cuts)
def test_json_values_never_crash_and_never_lose_bytes(data: bytes, sizes: list[int]) -> None:
    items = list(json_items(chunked(data, sizes), max_value=128))
    text = data.decode("utf-8", "surrogateescape")
    for item in items:
        assert item.raw.decode("utf-8", "surrogateescape") in text
        if item.document is not NOT_DECODED:
            assert json.loads(item.raw) == item.document


cells = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\r"), max_size=30)


@MANY
@given(st.lists(st.lists(cells, min_size=3, max_size=3), max_size=6), cuts)
def test_csv_rows_round_trip_with_commas_quotes_and_newlines_in_cells(rows: list[list[str]], sizes: list[int]) -> None:
    header = ["Id", "TimeGenerated [UTC]", "ConditionalAccessPolicies"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    got = list(csv_rows(lines(chunked(out.getvalue().encode(), sizes), max_line=1 << 20)))
    assert [row for _, _, row in got] == [dict(zip(header, r, strict=True)) for r in rows]
    for _, raw, row in got:
        assert next(csv.reader(io.StringIO(raw.decode()))) == list(row.values())  # type: ignore[union-attr]


@MANY
@given(st.binary(max_size=300))
def test_csv_rows_never_crash(data: bytes) -> None:
    for _, raw, row in csv_rows(lines([b"Id,Type\n" + data], max_line=1 << 20)):
        assert raw and (row is None or isinstance(row, dict))


ENVELOPES = ("records", "value", "tables")
record_lists = st.lists(
    (fields | st.dictionaries(st.text(max_size=12), json_values, max_size=4)).filter(
        lambda r: not any(key in r for key in ENVELOPES)
    ),
    min_size=1,
    max_size=6,
)


@MANY
@given(record_lists, st.sampled_from(["array", "pretty-array", "lines", "page", "gzip-array"]), cuts)
def test_every_record_in_any_container_is_judged_skipped_or_rejected(
    records: list, layout: str, sizes: list[int]
) -> None:
    if layout == "lines":
        data = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    elif layout == "page":
        data = json.dumps({"value": records, "@odata.nextLink": "x"}).encode()
    else:
        data = json.dumps(records, indent=2 if layout == "pretty-array" else None).encode()
        data = gzip.compress(data) if layout == "gzip-array" else data
    reading = Reading()
    for message in read_source(Source("t", lambda: chunked(data, sizes))):
        read_message(message, reading)
    assert len(reading.accepted) + sum(reading.skipped.values()) + len(reading.rejections) == len(records)


@MANY
@given(st.binary(max_size=400), cuts)
def test_no_bytes_crash_any_reader(data: bytes, sizes: list[int]) -> None:
    for input_format in ("auto", "csv", "graph", "archive"):
        reading = Reading()
        for message in read_source(Source("t", lambda: chunked(data, sizes)), input_format):
            read_message(message, reading)


@MANY
@given(
    st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2200, 1, 1)),
    st.sampled_from(["us", "portal", "24h"]),
)
def test_slashed_times_read_back_to_the_second(at: datetime, style: str) -> None:
    hour = at.hour % 12 or 12
    half = "AM" if at.hour < 12 else "PM"
    clock = f"{hour}:{at.minute:02d}:{at.second:02d}"
    text = {
        "us": f"{at.month}/{at.day}/{at.year} {clock} {half}",
        "portal": f"{at.month}/{at.day}/{at.year}, {clock}.{at.microsecond // 1000:03d} {half}",
        "24h": f"{at.month:02d}/{at.day:02d}/{at.year} {at.hour:02d}:{at.minute:02d}:{at.second:02d}",
    }[style]
    expected = at.replace(microsecond=(at.microsecond // 1000) * 1000 if style == "portal" else 0, tzinfo=UTC)
    assert parse_time(text) == expected.timestamp()


@MANY
@given(st.text(max_size=40))
def test_no_text_crashes_the_time_reader(text: str) -> None:
    parse_time(text)


la_columns = st.fixed_dictionaries(
    {},
    optional={
        name: json_values
        | st.text(max_size=20)
        | st.sampled_from(["", "[]", "{}", "None", '{"signInSessionStatus":1}'])
        for name in (
            "Id",
            "CorrelationId",
            "CreatedDateTime",
            "TimeGenerated [UTC]",
            "Type",
            "Category",
            "IsInteractive",
            "SignInEventTypes",
            "DeviceDetail",
            "ConditionalAccessPolicies_string",
            "TokenProtectionStatusDetails",
            "UserPrincipalName",
        )
    },
)


@MANY
@given(st.lists(la_columns, min_size=1, max_size=6))
def test_log_analytics_rows_of_any_content_are_accounted_for(rows: list[dict]) -> None:
    reading = read_message(Message(json.dumps(rows).encode()))
    assert len(reading.accepted) + sum(reading.skipped.values()) + len(reading.rejections) == len(rows)
    for accepted in reading.accepted:
        judge(accepted, 0.0)


timed = st.tuples(
    st.one_of(st.none(), st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1))),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
)


@MANY
@given(st.lists(timed, max_size=30))
def test_the_spool_gives_back_every_message_oldest_first(items: list[tuple]) -> None:
    """Decoded or not, with or without a time (or a number beyond 64 bits), every message comes back once."""
    messages = []
    for n, (at, decoded, big) in enumerate(items):
        record = {"id": f"r{n}", "big": big}
        if at is not None:
            record["createdDateTime"] = at.isoformat() + "Z"
        body = json.dumps(record).encode()
        document = record if decoded else NOT_DECODED
        messages.append(Message(body, Origin(source=f"s{n % 3}", line=n), Shape.GRAPH, document))
    back = list(in_time_order(messages))
    assert sorted(m.body for m in back) == sorted(m.body for m in messages)
    times = [parse_time(json.loads(m.body).get("createdDateTime")) or float("-inf") for m in back]
    assert times == sorted(times)
    by_body = {m.body: m for m in messages}
    for message in back:
        original = by_body[message.body]
        assert (message.origin, message.shape) == (original.origin, original.shape)
        assert message.document in (original.document, NOT_DECODED)  # a huge number is decoded again later
