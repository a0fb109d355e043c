"""A realistic alert for 'send a test card', the README picture and tests: no real tenant data."""

from __future__ import annotations

from shared.core.alert import Alert
from shared.core.links import ENTRA_SIGNIN_LOGS


def sample(kind: str = "spike", status: str = "firing", at: float = 1_773_152_400.0) -> Alert:
    """A realistic alert for 'send a test card', the README picture and tests: no real tenant data."""
    base = Alert(
        fingerprint=f"sample-{kind}-0001",
        rule=f"unbound-{kind}",
        status="firing",
        at=at,
        title={
            "spike": "Unbound sign-ins spiking for Outlook on Windows",
            "threshold": "Over 50 unbound sign-ins in 15 minutes",
            "ratio": "Unbound share above 20 % for Teams",
            "new": "New unbound status code 1003 on macOS",
        }.get(kind, f"Unbound sign-ins ({kind})"),
        severity="critical" if kind == "spike" else "warning",
        enforcement="report_only" if kind != "threshold" else "enforced",
        group={"app": "Microsoft Outlook", "platform": "Windows 11"},
        starts_at=at - 900,
        summary="42 unbound sign-ins in the last 15 minutes against a baseline of 6 (7x). "
        "Most fail with 1008: the client does not use the broker (WAM).",
        kind=kind,
        unit="share" if kind == "ratio" else "count",
        current=0.27 if kind == "ratio" else 42,
        baseline=0.04 if kind == "ratio" else 6,
        window_seconds=900,
        signins=312,
        unbound=42,
        top={
            "apps": [("Microsoft Outlook", 30), ("Microsoft Teams", 9), ("OneDrive", 3)],
            "users": [("adele.vance@contoso.example", 11), ("alex.wilber@contoso.example", 7), ("+ 14 others", 24)],
            "platforms": [("Windows 11", 38), ("Windows 10", 4)],
        },
        codes=[
            {"code": 1008, "meaning": "The client app does not use the platform broker (WAM).", "fix": "Update it."},
            {"code": 1002, "meaning": "No Microsoft Entra device state.", "fix": "Register or join the device."},
        ],
        examples=["0f3c2b9e-3d52-4a8f-9a53-5b1a7f0c1d2e", "6a1d2c3b-7e8f-4a5b-9c0d-1e2f3a4b5c6d"],
        kql="SigninLogs\n| where TimeGenerated > ago(15m)\n"
        "| where TokenProtectionStatusDetails.signInSessionStatus == 'unbound'",
        links={"Entra sign-in logs": ENTRA_SIGNIN_LOGS},
        receivers=["teams"],
    )
    if status == "resolved":
        base.status, base.at, base.starts_at = "resolved", at + 1800, at - 900
    return base
