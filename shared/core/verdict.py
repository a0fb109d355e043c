"""The verdict line: one sign-in as people and our checks read it (replay, `verdicts`, logs)."""

from __future__ import annotations

from typing import Any

from .signin import SignIn
from .status_code import describe
from .timestamp import iso


def verdict_line(signin: SignIn) -> dict[str, Any]:
    """The replay contract's verdict object, plus what helps a person act on it."""
    codes = signin.status_codes
    return {
        "type": "verdict",
        "correlation_id": signin.correlation_id,
        "verdict": signin.verdict,
        "requests": len(signin.requests),
        "unbound_requests": signin.unbound_requests,
        "status_codes": codes,
        "enforcement": signin.enforcement.label,
        "user": signin.user,
        "first_seen": iso(signin.first_seen),
        "last_seen": iso(signin.last_seen),
        "apps": sorted(signin.apps),
        "resources": sorted(signin.resources),
        "device_os": signin.os,
        "trust_type": signin.trust_type,
        "client_app": signin.client_app,
        "categories": sorted(signin.categories),
        "codes": [{"code": c, "meaning": describe(c).meaning, "fix": describe(c).fix} for c in codes],
        "revision": signin.finals,
    }
