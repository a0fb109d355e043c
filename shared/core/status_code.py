"""What each `signInSessionStatusCode` means and what an admin does about it.

Condensed from Microsoft's Token Protection guides. Alerts, verdicts and reports
all explain codes from this one table, so the wording stays consistent (and 1008
is never called token theft: it means the client does not use the broker).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StatusCode:
    code: int
    meaning: str
    fix: str
    self_remediable: bool = False


_CODES = {
    c.code: c
    for c in (
        StatusCode(0, "Bound: the request used a device-bound token.", "Nothing to do."),
        StatusCode(
            1002,
            "No Microsoft Entra device state: an unregistered or personal device, or a browser on an unmanaged device.",
            "Register or join the device (Windows: Entra joined, hybrid joined or registered; Apple: MDM-managed "
            "with the Enterprise SSO plug-in), or keep these users or devices out of the policy's scope.",
        ),
        StatusCode(
            1003,
            "The device's registration type is not supported for Token Protection, or it was registered without "
            "fresh sign-in credentials (Apple: a legacy registration).",
            "Apple: the user upgrades the registration once. Windows unsupported types (AVD, Cloud PC, bulk "
            "enrolment, Autopilot self-deploying): exclude them with a device filter. Other Windows devices: "
            "re-register with fresh credentials.",
            self_remediable=True,
        ),
        StatusCode(
            1004,
            "The device registration is not hardware-backed (macOS).",
            "The user upgrades to a hardware-backed registration.",
            self_remediable=True,
        ),
        StatusCode(
            1005,
            "Unbound for another, unspecified reason.",
            "Investigate by app, OS and client version; raise it with Microsoft support if it persists.",
        ),
        StatusCode(
            1006,
            "The OS version is not supported (below Windows 10, macOS 14.0 or iOS/iPadOS 16.0).",
            "Update the OS, or exclude the platform version from the policy.",
        ),
        StatusCode(
            1007,
            "The registration is not hardware-backed and the user is not the registered owner of the device.",
            "Have the device registered by the person who uses it, or exclude shared devices.",
        ),
        StatusCode(
            1008,
            "The client app does not use the platform broker (WAM on Windows, the broker app or SSO extension on "
            "Apple). This is a client configuration issue, not evidence of token theft.",
            "Update or configure the client to use the broker, install the broker app, or exclude the app from "
            "the policy.",
        ),
    )
}

# Microsoft's IsSelfRemediable: the user can fix these on their own device.
SELF_REMEDIABLE = frozenset(entry.code for entry in _CODES.values() if entry.self_remediable)

_UNKNOWN_FIX = "Undocumented code: note the app, OS and client version and watch whether it persists."


def describe(code: int | None) -> StatusCode:
    """The entry for a code; undocumented and missing codes get a clear 'unknown' entry."""
    if code is None:
        return StatusCode(-1, "Unbound without a status code.", _UNKNOWN_FIX)
    return _CODES.get(code) or StatusCode(code, f"Undocumented status code {code}.", _UNKNOWN_FIX)


def meaning(code: int | None) -> str:
    return describe(code).meaning
