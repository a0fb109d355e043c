"""Log Analytics and Sentinel rows of `SigninLogs` and `AADNonInteractiveUserSignInLogs`, as sign-ins.

A row has PascalCase columns (`Id`, `CorrelationId`, `CreatedDateTime`, ...). Its
dynamic columns (`DeviceDetail`, `ConditionalAccessPolicies`,
`TokenProtectionStatusDetails`) come as objects or as JSON text: the non-interactive
table stores them as strings, the portal's CSV export and `az` write them as text.
An empty string means absent, as Microsoft's own queries read it. This module maps a
row onto the camelCase fields the judge reads; nothing else about the row is used.
"""

from __future__ import annotations

from typing import Any

import orjson

from .category import TABLES, by_content, named, truth

# Column (lower-cased) -> the signIn property it holds. `ResourceId` is the tenant's path in these tables;
# the resource's app id is `ResourceIdentity`.
SCALARS = {
    "id": "id",
    "correlationid": "correlationId",
    "createddatetime": "createdDateTime",
    "userprincipalname": "userPrincipalName",
    "userid": "userId",
    "appdisplayname": "appDisplayName",
    "appid": "appId",
    "resourcedisplayname": "resourceDisplayName",
    "resourceidentity": "resourceId",
    "clientappused": "clientAppUsed",
    "serviceprincipalid": "servicePrincipalId",
    "signineventtypes": "signInEventTypes",
}
DYNAMIC = {
    "devicedetail": "deviceDetail",
    "tokenprotectionstatusdetails": "tokenProtectionStatusDetails",
    "conditionalaccesspolicies": "appliedConditionalAccessPolicies",
}
# Columns that say this is a row of a sign-in table (any one of them).
MARKERS = frozenset({"Id", "TimeGenerated", "CreatedDateTime", "CorrelationId", "Type", "Category", "TenantId"})
_ABSENT = frozenset({"", "null", "none", "[]", "{}"})


def is_row(record: dict[str, Any]) -> bool:
    return any(key in record for key in MARKERS) or any(key.split(" [", 1)[0] in MARKERS for key in record)


def normalise(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The row as (top level, camelCase properties, category)."""
    properties: dict[str, Any] = {}
    named_as: dict[str, Any] = {}  # time, category and table
    for key, value in row.items():
        column = _column(key)
        if column in SCALARS:
            if value is not None and value != "":
                properties[SCALARS[column]] = value
        elif column in DYNAMIC:
            decoded = dynamic(value)
            if decoded is not None:
                properties[DYNAMIC[column]] = decoded
        elif column in _OTHERS:
            named_as[column] = value
    if "isinteractive" in named_as:
        properties["isInteractive"] = truth(named_as["isinteractive"])
    top = {"time": named_as.get("timegenerated"), "correlationId": properties.get("correlationId")}
    return top, properties, _category(named_as) or by_content(properties.get)


_OTHERS = frozenset({"isinteractive", "timegenerated", "category", "type"})


def _category(named_as: dict[str, Any]) -> str | None:
    category = named(named_as.get("category"))
    if category is not None:
        return category
    table = named(named_as.get("type"))
    return TABLES.get(table.lower(), table) if table is not None else None


def dynamic(value: Any) -> Any:
    """A dynamic column's value: an object or list as it is, JSON text decoded, absence as None."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _ABSENT:
            return None
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
    return value


def _column(key: str) -> str:
    """`TimeGenerated [UTC]` (portal CSV), `ConditionalAccessPolicies_dynamic` (a union) -> the column's name."""
    name = key.split(" [", 1)[0].strip().lower()
    for suffix in ("_dynamic", "_string"):
        if name.endswith(suffix) and name[: -len(suffix)] in DYNAMIC:
            return name[: -len(suffix)]
    return name
