"""Where people go next: the Entra sign-in logs, and bindwatch's own lookup of one sign-in."""

from __future__ import annotations

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
