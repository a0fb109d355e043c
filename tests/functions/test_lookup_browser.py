"""The lookup as on-call meets it: a click on an alert card's *Lookup* button opens the page in a real browser.

The card is the Teams message bindwatch sends (drawn by the Adaptive Cards SDK in Debian's
headless Chromium), its Lookup link is the one detection builds from BINDWATCH_PUBLIC_URL, and
the link leads to a local HTTP server that runs the real `signin_lookup` function as App Service
Authentication would pass the request on (the principal header set for a caller with the role).
"""

from __future__ import annotations

import dataclasses
import html
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from scripts import render_card
from scripts.render_report import FLAGS, chromium
from shared.core.alert import Notification
from shared.core.links import lookup_links
from shared.core.message import Message, Origin
from shared.ingest.files import messages_from
from shared.ingest.memory_store import MemoryStore
from shared.ingest.pipeline import Pipeline
from shared.ingest.replay import Replay
from shared.notify.teams import message
from shared.synth.alerts import sample
from shared.synth.records import body, policy, record
from shared.views.access import PRINCIPAL_HEADER
from shared.views.lookup import MemoryDetails
from tests.support.http import http_lookup, principal_header

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "<img src=x onerror=console.error('xss')><script>console.error('xss')</script>"


def samples_store() -> tuple[MemoryDetails, list[str]]:
    details = MemoryDetails()
    replay = Replay(Pipeline(MemoryStore(), 600.0, observers=[details]))
    last_verdicts = {
        line["correlation_id"]: line["verdict"]
        for outcome in replay.run(messages_from([str(ROOT / "samples")]))
        for line in outcome.lines
        if line["type"] == "verdict"
    }
    unbound = [cid for cid, verdict in last_verdicts.items() if verdict == "unbound"]
    return details, unbound


def serve(httpserver: HTTPServer, store: Any) -> None:
    """The function behind App Service Authentication: the header Easy Auth would add, then the real handler."""

    def handler(request: Request) -> Response:
        cid = request.path.rsplit("/", 1)[-1]
        headers = {**dict(request.headers), PRINCIPAL_HEADER: principal_header()}
        req = func.HttpRequest("GET", request.url, headers=headers, route_params={"correlation_id": cid}, body=b"")
        answer = http_lookup(req, store)
        return Response(answer.get_body(), status=answer.status_code, headers=dict(answer.headers),
                        content_type=f"{answer.mimetype}; charset=utf-8")  # fmt: skip

    httpserver.expect_request(re.compile(r"^/api/signins/[^/]+$")).respond_with_handler(handler)


def browse(url_or_page: str | Path, budget_ms: int = 8000) -> tuple[str, list[str]]:
    """The DOM Chromium ends on (after any navigation) and what it logged to the console."""
    target = url_or_page.resolve().as_uri() if isinstance(url_or_page, Path) else url_or_page
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", "--dump-dom",
             target],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return done.stdout, console


CLICK = """
<script>
const clickLookup = () => {
  const button = [...document.querySelectorAll("button")].find((b) => b.textContent.trim().startsWith("Lookup"));
  if (button) { button.click(); } else { document.title = "no lookup button"; }
};
AdaptiveCards.AdaptiveCard.onExecuteAction = (action) => { window.location.href = action.url; };
setTimeout(clickLookup, 100);
</script></body>"""


def test_a_click_on_the_cards_lookup_button_opens_the_signin_page(httpserver: HTTPServer, tmp_path: Path) -> None:
    store, unbound = samples_store()
    serve(httpserver, store)
    public_url = httpserver.url_for("/").rstrip("/")
    alert = dataclasses.replace(sample(), links=lookup_links(public_url, unbound[:3]))
    content = message(Notification("teams", [alert], alert.at), public_url)["attachments"][0]["content"]
    card = tmp_path / "card.html"
    card.write_text(render_card.page(content).replace("</body>", CLICK), encoding="utf-8")

    dom, console = browse(card)

    assert console == []
    assert "no lookup button" not in dom
    assert f'Sign-in <span class="mono">{unbound[0]}</span>' in dom, dom[:2000]
    assert "Every request" in dom and "Look further" in dom
    assert "union SigninLogs, AADNonInteractiveUserSignInLogs" in dom
    assert len(httpserver.log) == 1 and httpserver.log[0][1].status_code == 200


def test_the_page_escapes_hostile_log_values_in_a_real_browser(httpserver: HTTPServer) -> None:
    cid = "7a1b2c3d-0000-4000-8000-000000000001"
    details = MemoryDetails()
    pipeline = Pipeline(MemoryStore(), 600.0, observers=[details])
    hostile_policy = policy(HOSTILE, result="failure", not_satisfied=["SignInTokenProtection"])
    rec = record(correlation_id=cid, status="unbound", code=1002, app=HOSTILE, user=HOSTILE, policies=[hostile_policy])
    pipeline.ingest([Message(body([rec]), Origin(source="test"))])
    pipeline.drain()
    serve(httpserver, details)

    dom, console = browse(httpserver.url_for(f"/api/signins/{{{cid.upper()}}}"))

    assert console == []  # no injected script ran, and the CSP had nothing to block
    assert "<img" not in dom and "<script" not in dom
    assert html.escape("<img src=x onerror=", quote=False) in dom
    assert "Unbound: at least one request" in dom


def test_the_detector_sees_a_script_that_runs(tmp_path: Path) -> None:
    """Canary: the same check reports console output, so an empty list above means something."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('ran')</script></body></html>")
    _, console = browse(page, budget_ms=1000)
    assert any("ran" in line for line in console)
