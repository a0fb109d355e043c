"""Where people go next: the Entra sign-in logs, a KQL query for one sign-in, and bindwatch's own lookup."""

from __future__ import annotations

import json
from urllib.parse import quote

from .correlation import valid_correlation_id

# The sign-in logs in the Microsoft Entra admin center.
ENTRA_SIGNIN_LOGS = "https://entra.microsoft.com/#view/Microsoft_AAD_IAM/SignInLogsList.ReactView"


def lookup_url(public_url: str | None, correlation_id: str) -> str | None:
    """The lookup URL of a sign-in, when the app's public URL is configured and the id is well-formed."""
    if not public_url or not valid_correlation_id(correlation_id):
        return None
    return f"{public_url.rstrip('/')}/api/signins/{quote(correlation_id, safe='')}"


def lookup_links(public_url: str | None, correlation_ids: list[str], limit: int = 3) -> dict[str, str]:
    """Alert.links entries ('Lookup 8b1f0c2e' -> URL) for an alert's example sign-ins (short: card buttons)."""
    links: dict[str, str] = {}
    for correlation_id in correlation_ids[:limit]:
        url = lookup_url(public_url, correlation_id)
        if url:
            title = f"Lookup {correlation_id[:8]}"
            links[title if title not in links else f"Lookup {correlation_id}"] = url
    return links


def signin_kql(correlation_id: str, first_seen: str | None = None, last_seen: str | None = None) -> str:
    """Log Analytics KQL for every request of one sign-in (both log tables), with what bindwatch judged them by.

    `first_seen`/`last_seen` (ISO times) narrow the scan to the sign-in's day; without them the last 30 days.
    The id is quoted as a JSON string, so even an odd id cannot change the query.
    """
    window = (
        f"| where TimeGenerated between (datetime({first_seen}) - 1d .. datetime({last_seen}) + 1d)"
        if first_seen and last_seen
        else "| where TimeGenerated > ago(30d)"
    )
    return "\n".join(
        [
            "union SigninLogs, AADNonInteractiveUserSignInLogs",
            window,
            f"| where CorrelationId == {json.dumps(correlation_id)}",
            "| extend TP = parse_json(tostring(TokenProtectionStatusDetails))",
            "| project CreatedDateTime, Id, AppDisplayName, ResourceDisplayName, UserPrincipalName,",
            "    Status = tostring(TP.signInSessionStatus), Code = tostring(TP.signInSessionStatusCode),",
            "    DeviceDetail, ClientAppUsed, ConditionalAccessPolicies",
            "| order by CreatedDateTime asc",
        ]
    )
