"""Which log a sign-in belongs to: named by the record, or judged by what it holds.

Event Hub and archive records name their category; Log Analytics rows name their
table (`Type`) and usually the category (`Category`); a Graph `signIn` object names
neither but says `signInEventTypes` and `isInteractive`. A record that names nothing is
still a sign-in: it is judged by its content, never skipped as unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

SIGN_IN_LOGS = "SignInLogs"
NON_INTERACTIVE = "NonInteractiveUserSignInLogs"
SERVICE_PRINCIPAL = "ServicePrincipalSignInLogs"
MANAGED_IDENTITY = "ManagedIdentitySignInLogs"

# Lower-cased category -> the name Entra uses. Only user sign-ins carry a token protection story.
JUDGED_CATEGORIES = {SIGN_IN_LOGS.lower(): SIGN_IN_LOGS, NON_INTERACTIVE.lower(): NON_INTERACTIVE}
MISSING_CATEGORY = "(missing)"
AUDIT_LOGS = "auditlogs"  # lower-cased: Conditional Access policy changes are read from it (core.policy_change)

# Log Analytics table (the `Type` column) -> the diagnostic setting's category.
TABLES = {
    "signinlogs": SIGN_IN_LOGS,
    "aadnoninteractiveusersigninlogs": NON_INTERACTIVE,
    "aadserviceprincipalsigninlogs": SERVICE_PRINCIPAL,
    "aadmanagedidentitysigninlogs": MANAGED_IDENTITY,
    "adfssigninlogs": "ADFSSignInLogs",
}
# Graph `signInEventTypes` value -> category; the first user type listed decides.
EVENT_TYPES = {
    "interactiveuser": SIGN_IN_LOGS,
    "noninteractiveuser": NON_INTERACTIVE,
    "serviceprincipal": SERVICE_PRINCIPAL,
    "managedidentity": MANAGED_IDENTITY,
}


def named(value: Any) -> str | None:
    """A category as the record names it, or None when it names none."""
    return value if isinstance(value, str) and value.strip() else None


def by_content(get: Callable[[str], Any]) -> str:
    """The category of a sign-in that names none, from its camelCase fields (`get(name)`).

    `signInEventTypes` first, then `isInteractive`; a sign-in with a service principal and no user is a
    service principal's; anything else is an interactive user sign-in, which is what Graph lists unless
    asked for other kinds.
    """
    for kind in event_types(get("signInEventTypes")):
        category = EVENT_TYPES.get(kind.lower())
        if category is not None:
            return category
    interactive = truth(get("isInteractive"))
    if interactive is not None:
        return SIGN_IN_LOGS if interactive else NON_INTERACTIVE
    if _text(get("servicePrincipalId")) and not (_text(get("userPrincipalName")) or _text(get("userId"))):
        return SERVICE_PRINCIPAL
    return SIGN_IN_LOGS


def event_types(value: Any) -> list[str]:
    """`signInEventTypes` as a list, a JSON text (Log Analytics keeps it as text) or a comma-joined string."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                return []
        else:
            return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def truth(value: Any) -> bool | None:
    """A boolean as exports write it: true, "true", "True", "TRUE", "1"; None when it says nothing."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
    return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
