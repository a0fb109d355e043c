"""What an admin acts on next: each cause of blocks, the Conditional Access change that answers it, and "what if".

A cause is one reason a token protection policy blocks requests (Microsoft's Block,
per request): browsers the policy should not evaluate, a platform Token Protection
does not cover, or a status code on one platform. For each, the report gives the
fix from the status-code table, a ready-to-paste Conditional Access change with
the setting's name in the portal (a device filter on the device IDs seen, the
platforms or client apps to leave out, or the users to exclude), and the shares
Microsoft's figures would show if that cause were fixed, or excluded instead.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shared.core.coverage import SUPPORTED_PLATFORMS, expected_reason, platform
from shared.core.request import Request
from shared.core.status_code import SELF_REMEDIABLE, describe

from .impact import NO_CODE, outcome

MAX_DEVICE_IDS = 50  # a CA device-filter rule is limited to 3,072 characters; 50 quoted GUIDs fit
MAX_USERS = 50
DEVICE_FILTER = "Conditions > Filter for devices > Configure: Yes > Exclude filtered devices from policy > Rule syntax"
CLIENT_APPS = "Conditions > Client apps"
DEVICE_PLATFORMS = "Conditions > Device platforms"
EXCLUDE_USERS = "Users > Exclude > Users and groups"


@dataclass
class _Cause:
    key: tuple[str, ...]
    requests: int = 0
    blocked: int = 0
    self_remediable: int = 0
    users: set[str] = field(default_factory=set)
    signins: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    apps: Counter[str] = field(default_factory=Counter)


def _cause_key(request: Request) -> tuple[str, ...]:
    reason = expected_reason(request)
    if reason == "Browser client":
        return ("browser",)
    if reason:
        return ("platform", platform(request.os))
    return ("code", str(NO_CODE if request.code is None else request.code), platform(request.os))


def blocking_causes(requests: Iterable[Request], totals: dict[str, Any]) -> list[dict[str, Any]]:
    """Every cause of Microsoft's Block (per request), largest first, with its change and its "what if"."""
    causes: dict[tuple[str, ...], _Cause] = {}
    blocks_by_user: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for request in requests:
        result = outcome(request)
        if result not in ("blocked", "would_block"):
            continue
        key = _cause_key(request)
        cause = causes.setdefault(key, _Cause(key))
        cause.requests += 1
        cause.blocked += result == "blocked"
        cause.self_remediable += request.code in SELF_REMEDIABLE
        cause.users.add(request.user)
        cause.signins.add(request.correlation_id)
        cause.apps[request.app or "(no app)"] += 1
        if request.device_id:
            cause.devices.add(request.device_id)
        blocks_by_user[request.user].add(key)
    ordered = sorted(causes.values(), key=lambda c: (-c.requests, c.key))
    return [_describe(c, totals, blocks_by_user) for c in ordered]


def _describe(cause: _Cause, totals: dict[str, Any], blocks_by_user: dict[str, set[tuple[str, ...]]]) -> dict[str, Any]:
    return {
        "cause": _title(cause.key),
        "kind": cause.key[0],
        "code": int(cause.key[1]) if cause.key[0] == "code" and cause.key[1] != str(NO_CODE) else None,
        "platform": cause.key[-1] if cause.key[0] != "browser" else None,
        "unit": "request",
        "requests": cause.requests,
        "blocked": cause.blocked,
        "would_be_blocked": cause.requests - cause.blocked,
        "users": len(cause.users),
        "signins": len(cause.signins),
        "devices": len(cause.devices),
        "apps": [[app, n] for app, n in sorted(cause.apps.items(), key=lambda item: (-item[1], item[0]))[:5]],
        **_action(cause),
        "what_if": _what_if(cause, totals, blocks_by_user),
    }


def _title(key: tuple[str, ...]) -> str:
    if key[0] == "browser":
        return "Browser clients (Token Protection does not bind browsers)"
    if key[0] == "platform":
        return f"{key[1]} devices (a platform Token Protection does not cover)"
    code = None if key[1] == str(NO_CODE) else int(key[1])
    return f"Code {code if code is not None else 'none'} on {key[2]}: {describe(code).meaning}"


def _action(cause: _Cause) -> dict[str, Any]:
    """The fix, and the Conditional Access change to paste (with the setting's name in the admin center)."""
    if cause.key[0] == "browser":
        return {
            "fix": "Leave browsers out of the token protection policy (Teams Web and other MSAL.js apps break).",
            "setting": CLIENT_APPS,
            "paste": "Configure: Yes; select only 'Mobile apps and desktop clients' (clear 'Browser')",
        }
    if cause.key[0] == "platform":
        supported = ", ".join(sorted(SUPPORTED_PLATFORMS))
        return {
            "fix": f"Scope the policy to the platforms Token Protection supports ({supported}).",
            "setting": DEVICE_PLATFORMS,
            "paste": "Configure: Yes; Include: Windows, macOS, iOS; Exclude: " + _portal_platform(cause.key[1]),
        }
    code = None if cause.key[1] == str(NO_CODE) else int(cause.key[1])
    fix = describe(code).fix
    if cause.devices:
        ids = sorted(cause.devices)
        shown = ", ".join(f'"{d}"' for d in ids[:MAX_DEVICE_IDS])
        more = len(ids) - MAX_DEVICE_IDS
        return {
            "fix": fix,
            "setting": DEVICE_FILTER,
            "paste": f"device.deviceId -in [{shown}]",
            "paste_note": (f"{more} more device IDs are in the JSON (--format json)" if more > 0 else "")
            + ("; these devices are self-remediable: prefer the fix" if code in SELF_REMEDIABLE else ""),
        }
    users = sorted(u for u in cause.users if u)
    return {
        "fix": fix,
        "setting": EXCLUDE_USERS,
        "paste": "; ".join(users[:MAX_USERS]),
        "paste_note": "no device ID in the logs (unregistered devices): exclude the users, or better a group of them"
        + (f"; {len(users) - MAX_USERS} more users in the JSON" if len(users) > MAX_USERS else ""),
    }


def _portal_platform(family: str) -> str:
    """The Device platforms checkbox for a platform family, as the admin center names it."""
    return {"Linux": "Linux", "Android": "Android", "ChromeOS": "(not listed: use 'Any device' minus the rest)"}.get(
        family, family
    )


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 2) if whole > 0 else None


def _what_if(cause: _Cause, totals: dict[str, Any], blocks_by_user: dict[str, set[tuple[str, ...]]]) -> dict[str, Any]:
    """Microsoft's shares if this cause were fixed (its requests pass) or excluded (they leave the policy)."""
    evaluated, allowed, remediable = totals["evaluated"], totals["allowed"], totals["self_remediable"]
    n, own_remediable = cause.requests, cause.self_remediable
    freed = sum(1 for keys in blocks_by_user.values() if keys == {cause.key})
    return {
        "pct_allowed_now": totals["pct_allowed"],
        "pct_enforceable_now": totals["pct_enforceable"],
        # Browsers and uncovered platforms cannot be fixed on the device: only leaving them out helps.
        "fixed": None
        if cause.key[0] != "code"
        else {
            "pct_allowed": _pct(allowed + n, evaluated),
            "pct_enforceable": _pct(allowed + remediable + n - own_remediable, evaluated),
        },
        "excluded": {
            "pct_allowed": _pct(allowed, evaluated - n),
            "pct_enforceable": _pct(allowed + remediable - own_remediable, evaluated - n),
        },
        "users_no_longer_blocked": freed,
    }
