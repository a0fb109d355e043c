"""The traps Microsoft warns about in a token protection policy, as the sign-in logs reveal them.

Pure. A request a token protection policy judged proves a trap of that policy when it comes from a browser
(outside the Azure Resource Manager preview) or reaches a resource Token Protection does not support (the sign of
the 'Office 365' app group). The third trap, unsupported platforms left unchecked, is proven by requests no policy
judged (the report finds it across a user's requests). The report's policy hints and the live guardrail both flag
them, once per policy, with these words. Source: Microsoft Entra's "Token protection in Conditional Access".
"""

from __future__ import annotations

from dataclasses import dataclass

from .coverage import is_arm, is_browser, is_supported_resource
from .request import Request


@dataclass(frozen=True, slots=True)
class Trap:
    title: str
    advice: str


TRAPS = {
    "browser": Trap(
        "A token protection policy is evaluated for browser clients",
        "The policy's Client apps condition includes Browser. Token Protection supports native apps only "
        "(browsers only for Azure Resource Manager, in preview), so it blocks MSAL.js apps such as Teams Web. Set "
        "Client apps to 'Mobile apps and desktop clients' only.",
    ),
    "unsupported_resource": Trap(
        "A token protection policy is evaluated for resources Token Protection does not support",
        "The policy targets a resource outside Exchange Online, SharePoint Online, Teams Services (and AVD, "
        "Windows 365, Windows Cloud Login, Azure Resource Manager). That is a sign it targets the 'Office 365' app "
        "group, which Microsoft says not to do. Target the supported resources by name.",
    ),
    "unsupported_platform": Trap(
        "Sign-ins from unsupported platforms reach the protected resources unchecked",
        "People this policy protects also reach Exchange Online, SharePoint Online or Teams from platforms Token "
        "Protection does not support (Android, Linux, unknown), and no token protection policy judged those "
        "sign-ins: a token stolen there, or a device that claims such a platform, is not stopped. Microsoft "
        "recommends a policy that blocks unknown platforms, and one that requires a compliant device on the known "
        "ones.",
    ),
}


def traps_of(request: Request) -> list[str]:
    """The traps one request proves of the token protection policies that judged it."""
    found = []
    if is_browser(request) and not is_arm(request.resource):
        found.append("browser")
    if not is_supported_resource(request.resource):
        found.append("unsupported_resource")
    return found
