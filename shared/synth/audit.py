"""Synthetic Entra audit records of Conditional Access policy saves, in the documented shapes.

Written from Microsoft Graph's `directoryAudit` and `conditionalAccessPolicy` pages and public rule fixtures:
the policy before and after as JSON text in the modified property `ConditionalAccessPolicy`, the Event Hub
envelope (`time`, `operationName`, `category: AuditLogs`, `properties`), and the companion "Core Directory"
record each save also makes.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

from .records import BASE_TIME

POLICY_ID = "5f1c9d4e-0000-4000-8000-00000000a001"


def policy(
    name: str = "CA-TP01 Require token protection",
    state: str = "enabledForReportingButNotEnforced",
    protection: bool = True,
    **conditions: Any,
) -> dict[str, Any]:
    """A Graph conditionalAccessPolicy as the audit log writes it (keys in its own order, no platforms when unset)."""
    body: dict[str, Any] = {
        "id": POLICY_ID,
        "displayName": name,
        "createdDateTime": "2026-02-01T09:00:00Z",
        "modifiedDateTime": "2026-03-09T09:00:00Z",
        "state": state,
        "conditions": {
            "applications": {
                "includeApplications": ["00000002-0000-0ff1-ce00-000000000000"],
                "excludeApplications": [],
            },
            "users": {"includeGroups": ["tp-pilot"], "excludeGroups": [], "includeUsers": [], "excludeUsers": []},
            "clientAppTypes": ["mobileAppsAndDesktopClients"],
            **conditions,
        },
        "grantControls": None,
        "sessionControls": {"secureSignInSession": {"isEnabled": True}} if protection else {"signInFrequency": None},
    }
    return body


def changed(before: dict[str, Any], **changes: Any) -> dict[str, Any]:
    after = copy.deepcopy(before)
    after.update(changes)
    return after


def audit_record(
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    at: datetime = BASE_TIME,
    actor: dict[str, Any] | None = None,
    record_id: str = "IPCGraph_0001",
    **properties: Any,
) -> dict[str, Any]:
    """The Event Hub record of one Conditional Access save (`operation` from which side is missing)."""
    operation = "Add" if before is None else "Delete" if after is None else "Update"
    activity = f"{operation} conditional access policy"
    target = after or before or {}
    audit: dict[str, Any] = {
        "id": record_id,
        "category": "Policy",
        "correlationId": "c0ffee00-0000-4000-8000-000000000001",
        "result": "success",
        "resultReason": None,
        "activityDisplayName": activity,
        "activityDateTime": at.isoformat(),
        "loggedByService": "Conditional Access",
        "operationType": operation,
        "initiatedBy": actor or {"user": {"id": "u-1", "displayName": None, "userPrincipalName": "admin@contoso.com"}},
        "targetResources": [
            {
                "id": target.get("id", POLICY_ID),
                "displayName": target.get("displayName"),
                "type": "Policy",
                "modifiedProperties": [
                    {
                        "displayName": "ConditionalAccessPolicy",
                        "oldValue": json.dumps(before) if before is not None else None,
                        "newValue": json.dumps(after) if after is not None else None,
                    }
                ],
            }
        ],
        "additionalDetails": [{"key": "Category", "value": "Conditional Access"}],
        **properties,
    }
    return {
        "time": at.isoformat(),
        "resourceId": "/tenants/00000000-0000-0000-0000-000000000000/providers/Microsoft.aadiam",
        "operationName": activity,
        "operationVersion": "1.0",
        "category": "AuditLogs",
        "tenantId": "00000000-0000-0000-0000-000000000000",
        "resultSignature": "None",
        "durationMs": "0",
        "correlationId": audit["correlationId"],
        "Level": 4,
        "properties": audit,
    }


def companion(record: dict[str, Any]) -> dict[str, Any]:
    """The "Core Directory" record the same save makes (legacy PolicyDetail format)."""
    other = copy.deepcopy(record)
    props = other["properties"]
    props["loggedByService"] = "Core Directory"
    props["activityDisplayName"] = other["operationName"] = "Update policy"
    props["id"] = "Directory_0001"
    props["targetResources"][0]["modifiedProperties"] = [
        {
            "displayName": "PolicyDetail",
            "oldValue": '["{\\"State\\":\\"Reporting\\"}"]',
            "newValue": '["{\\"State\\":\\"Enabled\\"}"]',
        }
    ]
    return other
