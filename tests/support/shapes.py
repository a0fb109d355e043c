"""One corpus of sign-ins written in every shape admins hold, for the tests that read them all alike.

Each writer takes resource-log records (the Event Hub stream's shape, as
`shared.synth.records.record` builds them) and writes the same sign-ins the way the
export in question does; docs/inputs.md describes each shape and its source.
"""

from __future__ import annotations

import csv
import gzip
import io
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from shared.synth.records import BASE_TIME, policy, record

TABLES = {"SignInLogs": "SigninLogs", "NonInteractiveUserSignInLogs": "AADNonInteractiveUserSignInLogs"}
EVENT_TYPES = {"SignInLogs": "interactiveUser", "NonInteractiveUserSignInLogs": "nonInteractiveUser"}
APPS = ["Microsoft Outlook", "Microsoft Teams", "Microsoft Office", "OneDrive SyncEngine"]
PLATFORMS = [("Windows10", "Azure AD joined"), ("MacOs", "Azure AD registered"), ("Ios 18.2", ""), ("Android", "")]


def corpus(signins: int = 240, seed: int = 14) -> list[dict[str, Any]]:
    """Well-formed user sign-ins over a few hours: 1-4 requests each, copies, both categories, every outcome."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    for n in range(signins):
        start = BASE_TIME + timedelta(seconds=n * 45, milliseconds=rng.randrange(1000))
        cid = f"c{n:04d}-{rng.getrandbits(32):08x}"
        user = f"user{rng.randrange(40):02d}@contoso.com"
        category = rng.choice(list(TABLES))
        app = rng.choice(APPS)
        os, trust = rng.choice(PLATFORMS)
        for k in range(rng.randint(1, 4)):
            at = start + timedelta(seconds=k * 7, milliseconds=rng.randrange(1000))
            records.append(_request(rng, cid, f"{cid}-r{k}", at, user, category, app, os, trust))
            if rng.random() < 0.1:
                records.append(records[-1])  # a copy, as Entra sometimes sends
    return records


def _request(rng: random.Random, cid: str, rid: str, at: datetime, *who: str) -> dict[str, Any]:
    user, category, app, os, trust = who
    outcome = rng.random()
    status, code = (
        ("bound", 0)
        if outcome < 0.5
        else ("unbound", rng.choice([1002, 1003, 1008]))
        if outcome < 0.8
        else (None, None)
    )
    result = rng.choice(["reportOnlyFailure", "reportOnlySuccess", "failure", "success", "notApplied"])
    policies = [policy(result=result, not_satisfied=["SignInTokenProtection"] if status == "unbound" else [])]
    return record(
        request_id=rid,
        correlation_id=cid,
        at=at,
        status=status,
        code=code if status else None,
        policies=policies,
        category=category,
        user=user,
        app=app,
        os=os,
        trust_type=trust,
        client_app=rng.choice(["Mobile Apps and Desktop clients", "Browser"]),
        fillers=2,
    )


# --- the shapes ---


def graph_object(rec: dict[str, Any]) -> dict[str, Any]:
    """A Graph signIn object: the properties, no envelope, `Z` times, the event type instead of a category."""
    signin = dict(rec["properties"])
    signin["createdDateTime"] = _utc(signin["createdDateTime"]).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    signin["signInEventTypes"] = [EVENT_TYPES[rec["category"]]]
    for entry in signin["appliedConditionalAccessPolicies"]:
        entry["conditionsSatisfied"] = "application,users"  # Graph writes these as text, the stream as numbers
    return signin


def la_row(rec: dict[str, Any], dynamic_as_text: bool) -> dict[str, Any]:
    """A Log Analytics row: PascalCase columns; the non-interactive table keeps dynamic columns as text."""
    p = rec["properties"]

    def dyn(value: Any) -> Any:
        if value is None:
            return ""
        return orjson.dumps(value).decode() if dynamic_as_text else value

    return {
        "TenantId": "11111111-2222-3333-4444-555555555555",
        "SourceSystem": "Azure AD",
        "TimeGenerated": _utc(rec["time"]).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "ResourceId": rec["resourceId"],
        "OperationName": "Sign-in activity",
        "Category": rec["category"],
        "AppDisplayName": p["appDisplayName"],
        "AppId": p["appId"],
        "ClientAppUsed": p["clientAppUsed"],
        "ConditionalAccessPolicies": dyn(p["appliedConditionalAccessPolicies"]),
        "ConditionalAccessStatus": "success",
        "CorrelationId": p["correlationId"],
        "CreatedDateTime": _utc(p["createdDateTime"]).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "DeviceDetail": dyn(p["deviceDetail"]),
        "Id": p["id"],
        "IsInteractive": p["isInteractive"],
        "ResourceDisplayName": p["resourceDisplayName"],
        "ResourceIdentity": p["resourceId"],
        "TokenProtectionStatusDetails": dyn(p.get("tokenProtectionStatusDetails")),
        "UserId": p["userId"],
        "UserPrincipalName": p["userPrincipalName"],
        "Type": TABLES[rec["category"]],
    }


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _portal_time(text: str) -> str:
    """Log Analytics' CSV export: `3/10/2026, 8:00:45.123 AM` (milliseconds, US order, 12-hour clock)."""
    at = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    hour = at.hour % 12 or 12
    half = "AM" if at.hour < 12 else "PM"
    return f"{at.month}/{at.day}/{at.year}, {hour}:{at.minute:02d}:{at.second:02d}.{at.microsecond // 1000:03d} {half}"


def la_csv(records: list[dict[str, Any]]) -> bytes:
    """The portal's "Export to CSV - all columns": datetimes as `X [UTC]`, dynamic columns as JSON text."""
    rows = [la_row(r, dynamic_as_text=True) for r in records]
    names = list(rows[0])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([f"{n} [UTC]" if n in ("TimeGenerated", "CreatedDateTime") else n for n in names])
    for row in rows:
        cells = dict(row)
        cells["TimeGenerated"] = _portal_time(row["TimeGenerated"])
        cells["CreatedDateTime"] = _portal_time(row["CreatedDateTime"])
        cells["IsInteractive"] = "TRUE" if row["IsInteractive"] else "FALSE"
        # The portal pretty-prints dynamic cells over several lines in one quoted cell.
        cells["DeviceDetail"] = orjson.dumps(orjson.loads(row["DeviceDetail"]), option=orjson.OPT_INDENT_2).decode()
        writer.writerow([cells[n] for n in names])
    return out.getvalue().encode("utf-8-sig")


def _lines(items: list[Any]) -> bytes:
    return b"".join(orjson.dumps(item) + b"\n" for item in items)


def _pretty(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2)


def write(shape: str, records: list[dict[str, Any]], target: Path) -> Path:
    """Write the records in `shape` under `target` (a file or a folder); returns the path to read."""
    writer = WRITERS[shape]
    path = target / shape
    writer(records, path)
    return path


def _bodies(records: list[dict[str, Any]], path: Path) -> None:
    path.write_bytes(_lines([{"records": records[i : i + 7]} for i in range(0, len(records), 7)]))


def _body_files(records: list[dict[str, Any]], path: Path) -> None:
    path.mkdir()
    for n, i in enumerate(range(0, len(records), 50)):
        (path / f"{n:03d}.json").write_bytes(_pretty({"records": records[i : i + 50]}))


def _archive(records: list[dict[str, Any]], path: Path) -> None:
    path.write_bytes(_lines(records))


def _graph_array_pretty(records: list[dict[str, Any]], path: Path) -> None:
    path.write_bytes(b"\xef\xbb\xbf" + _pretty([graph_object(r) for r in records]))  # Windows tools add a BOM


def _graph_array(records: list[dict[str, Any]], path: Path) -> None:
    path.write_bytes(orjson.dumps([graph_object(r) for r in records]))


def _graph_arrays_glued(records: list[dict[str, Any]], path: Path) -> None:
    """One pretty array per page, appended to one file, as some Graph exporters write."""
    objects = [graph_object(r) for r in records]
    path.write_bytes(b"".join(_pretty(objects[i : i + 100]) for i in range(0, len(objects), 100)))


def _graph_lines(records: list[dict[str, Any]], path: Path) -> None:
    path.write_bytes(_lines([graph_object(r) for r in records]))


def _graph_utf16(records: list[dict[str, Any]], path: Path) -> None:
    """Windows PowerShell 5.1's Out-File: UTF-16 with a BOM."""
    path.write_bytes(_pretty([graph_object(r) for r in records]).decode().encode("utf-16"))


def _graph_pages(records: list[dict[str, Any]], path: Path) -> None:
    path.mkdir()
    objects = [graph_object(r) for r in records]
    for n, i in enumerate(range(0, len(objects), 120)):
        page = {
            "@odata.context": "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns",
            "value": objects[i : i + 120],
        }
        page["@odata.nextLink"] = f"https://graph.microsoft.com/beta/auditLogs/signIns?$skiptoken=page{n + 1}"
        (path / f"page-{n:03d}.json").write_bytes(_pretty(page) if n % 2 else orjson.dumps(page))


def _graph_newest_first(records: list[dict[str, Any]], path: Path) -> None:
    """The portal's download and Graph list newest first."""
    path.write_bytes(_pretty([graph_object(r) for r in reversed(records)]))


def _portal_two_files(records: list[dict[str, Any]], path: Path) -> None:
    """The portal's interactive and non-interactive downloads: two files over the same hours, newest first."""
    path.mkdir()
    for category, name in (
        ("SignInLogs", "InteractiveSignIns"),
        ("NonInteractiveUserSignInLogs", "NonInteractiveSignIns"),
    ):
        mine = [graph_object(r) for r in reversed(records) if r["category"] == category]
        (path / f"{name}_2026-03-10_2026-03-11.json").write_bytes(_pretty(mine))


def _la_rows_any_order(records: list[dict[str, Any]], path: Path) -> None:
    """A query without `sort`: Log Analytics returns rows in no set order."""
    rows = [la_row(r, dynamic_as_text=True) for r in records]
    random.Random(7).shuffle(rows)
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))


def _la_rows(records: list[dict[str, Any]], path: Path) -> None:
    """SigninLogs rows keep dynamic columns as objects, AADNonInteractiveUserSignInLogs as text."""
    rows = [la_row(r, dynamic_as_text=r["category"] != "SignInLogs") for r in records]
    path.write_bytes(_pretty(rows))


def _la_api(records: list[dict[str, Any]], path: Path) -> None:
    rows = [la_row(r, dynamic_as_text=True) for r in records]
    columns = [{"name": name, "type": "string"} for name in rows[0]]
    path.write_bytes(
        orjson.dumps(
            {"tables": [{"name": "PrimaryResult", "columns": columns, "rows": [list(r.values()) for r in rows]}]}
        )
    )


def _la_csv(records: list[dict[str, Any]], path: Path) -> None:
    path.write_bytes(la_csv(records))


def _gzipped(inner: Callable[[list[dict[str, Any]], Path], None]) -> Callable[[list[dict[str, Any]], Path], None]:
    def write_gzip(records: list[dict[str, Any]], path: Path) -> None:
        plain = path.with_suffix(".plain")
        inner(records, plain)
        path.write_bytes(gzip.compress(plain.read_bytes()))
        plain.unlink()

    return write_gzip


WRITERS: dict[str, Callable[[list[dict[str, Any]], Path], None]] = {
    "eventhub-lines": _bodies,
    "eventhub-files": _body_files,
    "archive": _archive,
    "graph-array-pretty": _graph_array_pretty,
    "graph-array": _graph_array,
    "graph-arrays-glued": _graph_arrays_glued,
    "graph-lines": _graph_lines,
    "graph-utf16": _graph_utf16,
    "graph-pages": _graph_pages,
    "graph-newest-first": _graph_newest_first,
    "portal-two-files": _portal_two_files,
    "log-analytics-any-order": _la_rows_any_order,
    "log-analytics-rows": _la_rows,
    "log-analytics-api": _la_api,
    "log-analytics-csv": _la_csv,
    "archive-gzip": _gzipped(_archive),
    "graph-array-pretty-gzip": _gzipped(_graph_array_pretty),
    "log-analytics-csv-gzip": _gzipped(_la_csv),
}
