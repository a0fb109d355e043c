"""Builders for realistic sign-in records, shared by the samples, the tests and the benchmarks.

Records follow the shape of Entra's Event Hub stream: the common Azure Monitor top
level, camelCase `properties`, one entry per tenant CA policy (which is what makes
real records ~10 KB).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

TENANT = "11111111-2222-3333-4444-555555555555"
BASE_TIME = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)

APPS = {
    "Microsoft Outlook": "5d661950-3475-41cd-a2c3-d671a3162bc1",
    "Microsoft Teams": "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
    "Microsoft Office": "d3590ed6-52b3-4102-aeff-aad2292ab01c",
    "OneDrive SyncEngine": "ab9b8c07-8f02-4f72-87fa-80105867a763",
    "Microsoft Edge": "ecd6b820-32c2-49b6-98a6-444530e5a77a",
    "Microsoft Graph PowerShell": "14d82eec-204b-4c2f-b7e8-296a70dab67e",
}
RESOURCES = {
    "Office 365 Exchange Online": "00000002-0000-0ff1-ce00-000000000000",
    "Office 365 SharePoint Online": "00000003-0000-0ff1-ce00-000000000000",
    "Microsoft Teams Services": "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe",
    "Microsoft Graph": "00000003-0000-0000-c000-000000000000",
}
PLATFORMS = [
    ("Windows10", "Azure AD joined"),
    ("Windows10", "Hybrid Azure AD joined"),
    ("MacOs", "Azure AD registered"),
    ("Ios 18.2.1", "Azure AD registered"),
    ("Android", ""),
    ("Windows10", ""),
]


def uid(rng: random.Random | None = None) -> str:
    return str(uuid.UUID(int=(rng or random).getrandbits(128), version=4))


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"


def policy(
    name: str = "CA-TP01 Require token protection",
    result: str = "reportOnlyFailure",
    controls: list[str] | None = None,
    not_satisfied: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
        "displayName": name,
        "enforcedGrantControls": [],
        "enforcedSessionControls": ["SignInTokenProtection"] if controls is None else controls,
        "sessionControlsNotSatisfied": [] if not_satisfied is None else not_satisfied,
        "result": result,
        "conditionsSatisfied": 3,
        "conditionsNotSatisfied": 0,
    }


def filler_policies(count: int) -> list[dict[str, Any]]:
    """The tenant's other CA policies: listed on every record, mostly not applied."""
    results = ["notApplied", "success", "notApplied", "reportOnlyNotApplied", "notEnabled"]
    return [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"filler-{i}")),
            "displayName": f"CA{i:03d} Baseline policy {i}",
            "enforcedGrantControls": ["Mfa"] if i % 3 == 0 else ["RequireCompliantDevice"],
            "enforcedSessionControls": ["SignInFrequency"] if i % 4 == 0 else [],
            "sessionControlsNotSatisfied": [],
            "result": results[i % len(results)],
            "conditionsSatisfied": 3 if i % 2 else 0,
            "conditionsNotSatisfied": 0 if i % 2 else 1,
        }
        for i in range(count)
    ]


def record(
    *,
    request_id: str | None = None,
    correlation_id: str | None = None,
    at: datetime = BASE_TIME,
    status: str | None = "bound",
    code: int | str | None = None,
    policies: list[dict[str, Any]] | None = None,
    category: str = "NonInteractiveUserSignInLogs",
    user: str = "user01@contoso.com",
    app: str = "Microsoft Outlook",
    resource: str = "Office 365 Exchange Online",
    os: str = "Windows10",
    trust_type: str = "Azure AD joined",
    client_app: str = "Mobile Apps and Desktop clients",
    fillers: int = 0,
) -> dict[str, Any]:
    """One record of the stream; `status=None` leaves tokenProtectionStatusDetails out."""
    request_id = request_id or uid()
    correlation_id = correlation_id or uid()
    properties: dict[str, Any] = {
        "id": request_id,
        "createdDateTime": iso(at),
        "userDisplayName": user.split("@", maxsplit=1)[0],
        "userPrincipalName": user,
        "userId": str(uuid.uuid5(uuid.NAMESPACE_DNS, user)),
        "appId": APPS.get(app, "00000000-0000-0000-0000-000000000000"),
        "appDisplayName": app,
        "ipAddress": "203.0.113.24",
        "status": {"errorCode": 0},
        "clientAppUsed": client_app,
        "deviceDetail": {
            "deviceId": str(uuid.uuid5(uuid.NAMESPACE_DNS, user + os)) if trust_type else "",
            "displayName": "",
            "operatingSystem": os,
            "browser": "Rich Client 4.61.0.0" if client_app != "Browser" else "Edge 131.0.0",
            "isCompliant": bool(trust_type),
            "isManaged": bool(trust_type),
            "trustType": trust_type,
        },
        "location": {"city": "Redmond", "state": "Washington", "countryOrRegion": "US"},
        "correlationId": correlation_id,
        "conditionalAccessStatus": "success",
        "appliedConditionalAccessPolicies": (policies or []) + filler_policies(fillers),
        "originalRequestId": request_id,
        "isInteractive": category == "SignInLogs",
        "tokenIssuerType": "AzureAD",
        "authenticationProcessingDetails": [{"key": "Is CAE Token", "value": "True"}],
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskState": "none",
        "resourceDisplayName": resource,
        "resourceId": RESOURCES.get(resource, "00000000-0000-0000-0000-000000000001"),
        "resourceTenantId": TENANT,
        "homeTenantId": TENANT,
        "userType": "Member",
        "incomingTokenType": "refreshToken",
        "signInTokenProtectionStatus": "none",
        "sessionId": str(uuid.uuid5(uuid.NAMESPACE_OID, correlation_id)),
    }
    if status is not None:
        details: dict[str, Any] = {"signInSessionStatus": status}
        if code is not None:
            details["signInSessionStatusCode"] = code
        properties["tokenProtectionStatusDetails"] = details
    return {
        "time": iso(at + timedelta(seconds=90)),
        "resourceId": f"/tenants/{TENANT}/providers/Microsoft.aadiam",
        "operationName": "Sign-in activity",
        "operationVersion": "1.0",
        "category": category,
        "tenantId": TENANT,
        "resultType": "0",
        "resultSignature": "SUCCESS",
        "durationMs": 0,
        "callerIpAddress": "203.0.113.24",
        "correlationId": correlation_id,
        "identity": user.split("@", maxsplit=1)[0],
        "Level": 4,
        "location": "US",
        "properties": properties,
    }


def body(records: list[Any]) -> bytes:
    return orjson.dumps({"records": records})


def service_principal_record(at: datetime = BASE_TIME) -> dict[str, Any]:
    return {
        "time": iso(at),
        "category": "ServicePrincipalSignInLogs",
        "operationName": "Sign-in activity",
        "properties": {"id": uid(), "servicePrincipalName": "backup-job", "createdDateTime": iso(at)},
    }
