"""Who may open the on-call lookup: the signed-in principal App Service Authentication passes on, checked again.

The lookup shows user names, apps, devices and policy names, so it sits behind
Microsoft Entra ID sign-in (App Service Authentication, `infra/app/api.bicep`),
which already refuses anyone outside the group the deployer named. The function
checks once more (defence in depth), as Microsoft's own Microsoft.Identity.Web
does: it trusts the `X-MS-CLIENT-PRINCIPAL` header only when the platform says
authentication is on (`WEBSITE_AUTH_ENABLED=True`; App Service strips these
headers from outside requests only then), and requires the app role or group the
settings name. Without either setting the lookup is closed: fail closed, never open.

Pure: the header text and the settings in, a decision out.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

PRINCIPAL_HEADER = "x-ms-client-principal"
# Claim types App Service uses for app roles and groups: the short JWT names, or the mapped long ones.
_ROLE_TYPES = frozenset({"roles", "role", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"})
_GROUP_TYPES = frozenset({"groups", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"})
_NAME_TYPES = ("preferred_username", "name", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")
_MAX_HEADER = 64 * 1024  # a principal with thousands of groups is still far below this


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in caller as App Service Authentication describes it."""

    name: str
    roles: frozenset[str]
    groups: frozenset[str]


@dataclass(frozen=True, slots=True)
class LookupAccess:
    """What the settings ask for: App Service Authentication on, and this app role or this group."""

    auth_enabled: bool
    role: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int  # 401: sign in; 403: signed in but not allowed, or the lookup is not set up
    reason: str


def read_principal(header: str | None) -> Principal | None:
    """The principal from the Base64 JSON header, or None when it is missing or not what App Service writes."""
    if not header or len(header) > _MAX_HEADER:
        return None
    try:
        document = orjson.loads(base64.b64decode(header, validate=True))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("claims"), list):
        return None
    claims = [c for c in document["claims"] if isinstance(c, dict) and isinstance(c.get("typ"), str)]
    role_type = document.get("role_typ")
    role_types = _ROLE_TYPES | ({role_type} if isinstance(role_type, str) else set())
    return Principal(
        name=_first(claims, _NAME_TYPES),
        roles=frozenset(_values(claims, role_types)),
        groups=frozenset(v.lower() for v in _values(claims, _GROUP_TYPES)),
    )


def _values(claims: list[dict[str, Any]], types: frozenset[str]) -> list[str]:
    return [str(c.get("val")) for c in claims if c["typ"] in types and c.get("val") is not None]


def _first(claims: list[dict[str, Any]], types: tuple[str, ...]) -> str:
    for kind in types:
        for claim in claims:
            if claim["typ"] == kind and isinstance(claim.get("val"), str):
                return claim["val"]
    return ""


def check(access: LookupAccess, header: str | None) -> Refusal | None:
    """None when the caller may see the lookup; otherwise why not, as an HTTP status and a sentence."""
    if not access.auth_enabled:
        return Refusal(
            403,
            "the lookup is served only behind App Service Authentication (Microsoft Entra ID sign-in), "
            "which is not enabled on this app; see docs/lookup.md",
        )
    if not access.role and not access.group:
        return Refusal(403, "the lookup is closed: set LOOKUP_ALLOWED_ROLE or LOOKUP_ALLOWED_GROUP; see docs/lookup.md")
    principal = read_principal(header)
    if principal is None:
        return Refusal(401, "sign in with Microsoft Entra ID to open the lookup")
    if (access.role and access.role in principal.roles) or (access.group and access.group.lower() in principal.groups):
        return None
    wanted = " or ".join(
        part for part in (f"app role {access.role}" if access.role else "", "the on-call group" if access.group else "")
        if part
    )  # fmt: skip
    return Refusal(403, f"signed in, but without {wanted}: ask the bindwatch owners for access")
