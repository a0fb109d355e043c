"""What Token Protection covers: which platforms, clients and resources it binds, and so which unbound
requests are expected rather than a problem.

From Microsoft's Token Protection documentation: native apps on Windows, macOS and
iOS/iPadOS, for Exchange Online, SharePoint Online, Teams Services (and Azure
Virtual Desktop, Windows 365, Windows Cloud Login, Azure Resource Manager).
Browsers are not covered, except Azure Resource Manager in preview.
"""

from __future__ import annotations

from .request import Request

SUPPORTED_PLATFORMS = frozenset({"Windows", "macOS", "iOS/iPadOS"})
# Resources Token Protection supports, by display name and by the known app ids.
SUPPORTED_RESOURCE_NAMES = frozenset(
    {
        "office 365 exchange online",
        "exchange online",
        "office 365 sharepoint online",
        "sharepoint online",
        "microsoft teams services",
        "azure virtual desktop",
        "windows 365",
        "windows cloud login",
        "azure resource manager",
        "windows azure service management api",
    }
)
SUPPORTED_RESOURCE_IDS = frozenset(
    {
        "00000002-0000-0ff1-ce00-000000000000",  # Office 365 Exchange Online
        "00000003-0000-0ff1-ce00-000000000000",  # Office 365 SharePoint Online
        "797f4846-ba00-4fd7-ba43-dac1f8f63013",  # Azure Resource Manager
        "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe",  # Microsoft Teams Services (display names match too)
    }
)
ARM = frozenset(
    {"azure resource manager", "windows azure service management api", "797f4846-ba00-4fd7-ba43-dac1f8f63013"}
)
_BROWSERS = ("edge", "chrome", "firefox", "safari", "opera", "internet explorer", "ie ", "samsung", "brave")
_FAMILIES = (
    ("windows", "Windows"),
    ("mac", "macOS"),
    ("os x", "macOS"),
    ("ios", "iOS/iPadOS"),
    ("ipados", "iOS/iPadOS"),
    ("android", "Android"),
    ("linux", "Linux"),
    ("chrome", "ChromeOS"),
)


def platform(os_name: str) -> str:
    """The device platform family of `deviceDetail.operatingSystem` ('Ios 18.2.1' -> 'iOS/iPadOS')."""
    lowered = os_name.strip().lower()
    for prefix, family in _FAMILIES:
        if lowered.startswith(prefix):
            return family
    return os_name.strip() or "Unknown"


def is_browser(request: Request) -> bool:
    """A browser client: `clientAppUsed` Browser, or a device detail that names a browser, not a rich client."""
    if request.client_app.strip().lower() == "browser":
        return True
    browser = request.browser.strip().lower()
    return bool(browser) and not browser.startswith("rich client") and browser.startswith(_BROWSERS)


def is_arm(resource: str) -> bool:
    """Azure Resource Manager: the one resource browsers are bound for (preview)."""
    return resource.strip().lower() in ARM


def is_supported_resource(resource: str) -> bool:
    """True for a resource Token Protection supports, or when the record does not name one."""
    lowered = resource.strip().lower()
    return not lowered or lowered in SUPPORTED_RESOURCE_NAMES or lowered in SUPPORTED_RESOURCE_IDS


def expected_reason(request: Request) -> str | None:
    """Why this request is expected to be unbound (browser, unsupported platform), or None.

    Browsers reaching Azure Resource Manager are the supported browser preview, so not expected.
    """
    if is_browser(request) and not is_arm(request.resource):
        return "Browser client"
    family = platform(request.os)
    if family not in SUPPORTED_PLATFORMS:
        return f"Unsupported platform: {family}"
    return None
