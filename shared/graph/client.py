"""A small Graph client: GET a page, follow `@odata.nextLink`, wait out throttling, retry what retrying fixes.

Graph throttles the reporting APIs hard (a few requests per 10 seconds per app and
tenant) and answers 429 with `Retry-After`; 5xx and dropped connections are retried
with exponential backoff and jitter. Anything else (401, 403, 400) stops the pull with a
message that says what it needs. No token, and no URL query (it can carry a
`$skiptoken`), reaches a log line or an exception text.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
import orjson

RETRIED = frozenset({429, 500, 502, 503, 504})
FORBIDDEN_HINT = (
    "Graph refused the request (HTTP {status}): the caller needs the AuditLog.Read.All permission (application, or "
    "delegated with a reports role such as Reports Reader), and the tenant a Microsoft Entra ID P1 or P2 licence"
)


class GraphError(Exception):
    """The pull cannot go on; the message is safe to print (no token, no query string)."""


class TokenSource(Protocol):
    def token(self, fresh: bool = False) -> str:
        """A bearer token for Graph; `fresh` after a 401 asks for a new one."""
        ...


@dataclass
class StaticToken:
    """GRAPH_ACCESS_TOKEN, for scripts: used as it is (a 401 cannot be fixed by asking again)."""

    value: str = field(repr=False)

    def token(self, fresh: bool = False) -> str:
        if fresh:
            raise GraphError(
                "Graph refused GRAPH_ACCESS_TOKEN (HTTP 401): it expired, is for another audience than Graph, or "
                "does not carry AuditLog.Read.All"
            )
        return self.value


@dataclass
class CredentialToken:
    """An azure-identity credential (DefaultAzureCredential): it caches and refreshes tokens itself."""

    credential: Any
    scope: str

    def token(self, fresh: bool = False) -> str:
        return str(self.credential.get_token(self.scope).token)


@dataclass
class Retry:
    attempts: int = 8
    base: float = 1.0
    cap: float = 120.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        """Retry-After when Graph gives it (seconds or an HTTP date), else exponential backoff with full jitter."""
        after = retry_after(response.headers.get("Retry-After")) if response is not None else None
        if after is not None:
            return min(after, self.cap * 5)
        return random.uniform(0, min(self.cap, self.base * 2**attempt))


def retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


@dataclass
class Page:
    signins: list[dict[str, Any]]
    next_link: str | None


class GraphClient:
    def __init__(self, http: httpx.Client, tokens: TokenSource, retry: Retry | None = None) -> None:
        self.http = http
        self.tokens = tokens
        self.retry = retry or Retry()
        self.waits: list[float] = []  # every wait, for the pull's progress line (and the tests)

    def pages(self, url: str) -> Iterator[Page]:
        """The page at `url` and every page its nextLinks lead to."""
        next_url: str | None = url
        while next_url:
            page = self.page(next_url)
            yield page
            next_url = page.next_link

    def page(self, url: str) -> Page:
        document = self._get(url)
        value = document.get("value") if isinstance(document, dict) else None
        if not isinstance(value, list):
            raise GraphError("Graph answered with something that is not a page of sign-ins (no 'value' list)")
        link = document.get("@odata.nextLink")
        return Page([s for s in value if isinstance(s, dict)], link if isinstance(link, str) and link else None)

    def _get(self, url: str) -> Any:
        fresh = False
        for attempt in range(self.retry.attempts):
            response = self._send(url, fresh)
            if response is not None and response.status_code == 401 and not fresh:
                fresh = True
                continue
            if response is not None and response.status_code == 200:
                try:
                    return orjson.loads(response.content)
                except orjson.JSONDecodeError:
                    response = None  # a cut-off answer: retried like a dropped connection
            elif response is not None and response.status_code not in RETRIED:
                raise GraphError(_refusal(response))
            wait = self.retry.delay(attempt, response)
            self.waits.append(wait)
            self.retry.sleep(wait)
        raise GraphError(f"Graph kept failing after {self.retry.attempts} attempts; run the same command to resume")

    def _send(self, url: str, fresh: bool) -> httpx.Response | None:
        headers = {
            "Authorization": f"Bearer {self.tokens.token(fresh)}",
            "Accept": "application/json",
            # Without it, Graph answers newer members of evolvable enums (report-only policy results among them,
            # as the signIn reference notes) as unknownFutureValue.
            "Prefer": "include-unknown-enum-members",
        }
        try:
            return self.http.get(url, headers=headers)
        except httpx.TransportError:
            return None


def open_graph(graph_url: str, token: str | None, sleep: Callable[[float], None] | None = None) -> GraphClient:
    """A client with a static token (GRAPH_ACCESS_TOKEN) or the caller's identity for `<graph_url>/.default`."""
    tokens: TokenSource
    if token is not None:
        tokens = StaticToken(token)
    else:
        from azure.identity import DefaultAzureCredential

        tokens = CredentialToken(DefaultAzureCredential(), f"{graph_url.rstrip('/')}/.default")
    retry = Retry(sleep=sleep) if sleep is not None else Retry()
    return GraphClient(httpx.Client(timeout=httpx.Timeout(120.0, connect=15.0)), tokens, retry)


def _refusal(response: httpx.Response) -> str:
    if response.status_code in (401, 403):
        return FORBIDDEN_HINT.format(status=response.status_code)
    code = ""
    try:
        error = orjson.loads(response.content).get("error", {})
        code = f": {error.get('code')}" if isinstance(error, dict) and error.get("code") else ""
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return f"Graph refused the request (HTTP {response.status_code}{code})"
