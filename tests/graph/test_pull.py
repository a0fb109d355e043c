"""`pull` against a local Graph-shaped server that pages newest first, throttles, fails and recovers."""

from __future__ import annotations

import argparse
import base64
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from shared.cli import pull
from shared.core.timestamp import parse_time
from shared.graph.pull import USER_SIGNINS
from shared.settings import ConfigurationError, load_settings
from shared.synth.records import BASE_TIME
from tests.ingest.test_shapes import judged
from tests.support.shapes import corpus, graph_object, write

TOKEN = "test-token-not-a-secret"
CORPUS = corpus(signins=120)
OBJECTS = [graph_object(r) for r in CORPUS]
SINCE = BASE_TIME - timedelta(minutes=5)
UNTIL = BASE_TIME + timedelta(hours=2)
_FILTER = re.compile(r"createdDateTime ge (\S+) and createdDateTime lt (\S+) and (.+)$")


@dataclass
class Graph:
    """What Graph does, in little: newest first, 25 a page, nextLinks with an opaque skiptoken."""

    server: HTTPServer
    page_size: int = 25
    throttle: list[str] = field(default_factory=list)  # Retry-After values for the next requests, one each
    fail: dict[str, int] = field(default_factory=dict)  # skiptoken -> 5xx answers still to give
    status: int | None = None  # every request answers this (403 ...)
    requests: list[str] = field(default_factory=list)

    def handle(self, request: Request) -> Response:
        assert request.headers.get("Authorization") == f"Bearer {TOKEN}"
        if self.status is not None:
            return Response(b'{"error": {"code": "Authorization_RequestDenied"}}', status=self.status)
        if self.throttle:
            return Response(b"{}", status=429, headers={"Retry-After": self.throttle.pop(0)})
        token = request.args.get("$skiptoken")
        self.requests.append(token or "first")
        if token is not None and self.fail.get(token, 0) > 0:
            self.fail[token] -= 1
            return Response(b"{}", status=503)
        start, end, offset = self._position(request, token)
        matching = [o for o in OBJECTS if start <= parse_time(o["createdDateTime"]) < end]  # type: ignore[operator]
        matching.sort(key=lambda o: o["createdDateTime"], reverse=True)
        page: dict[str, Any] = {
            "@odata.context": "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns",
            "value": matching[offset : offset + self.page_size],
        }
        if offset + self.page_size < len(matching):
            skip = base64.urlsafe_b64encode(orjson.dumps([start, end, offset + self.page_size])).decode()
            page["@odata.nextLink"] = self.server.url_for(f"/beta/auditLogs/signIns?$top=25&$skiptoken={skip}")
        return Response(orjson.dumps(page), content_type="application/json")

    @staticmethod
    def _position(request: Request, token: str | None) -> tuple[float, float, int]:
        if token is not None:
            start, end, offset = orjson.loads(base64.urlsafe_b64decode(token))
            return start, end, offset
        match = _FILTER.match(request.args["$filter"])
        assert match is not None and match[3] == USER_SIGNINS and request.args["$top"] == "1000"
        return parse_time(match[1]), parse_time(match[2]), 0  # type: ignore[return-value]


@pytest.fixture
def graph(httpserver: HTTPServer) -> Graph:
    fake = Graph(httpserver)
    httpserver.expect_request("/beta/auditLogs/signIns").respond_with_handler(fake.handle)
    return fake


def run_pull(graph: Graph, out: Path, waits: list[float]) -> tuple[int, str]:
    args = argparse.Namespace(since=SINCE.isoformat(), until=UNTIL.isoformat(), out=str(out), window_minutes=30)
    settings = load_settings(GRAPH_URL=graph.server.url_for("/"), GRAPH_ACCESS_TOKEN=TOKEN)
    text = io.StringIO()
    code = pull.run(args, settings, text, sleep=waits.append)
    return code, text.getvalue()


def pulled(out: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def expected_in_period() -> list[dict[str, Any]]:
    return [o for o in OBJECTS if SINCE.timestamp() <= parse_time(o["createdDateTime"]) < UNTIL.timestamp()]  # type: ignore[operator]


def test_pages_throttling_and_retries_give_every_signin_once_oldest_first(graph: Graph, tmp_path: Path) -> None:
    graph.throttle = ["7", "2"]
    first_window_page = orjson.dumps([SINCE.timestamp(), SINCE.timestamp() + 1800, 25])
    graph.fail = {base64.urlsafe_b64encode(first_window_page).decode(): 2}
    waits: list[float] = []
    code, text = run_pull(graph, tmp_path / "signins.jsonl", waits)
    assert code == 0, text
    lines = pulled(tmp_path / "signins.jsonl")
    expected = expected_in_period()
    assert sorted(o["id"] for o in lines) == sorted(o["id"] for o in expected)  # each once (copies as Graph has them)
    times = [parse_time(o["createdDateTime"]) for o in lines]
    assert times == sorted(times)  # Graph gave them newest first; the file is oldest first
    assert waits[:2] == [7.0, 2.0]  # Retry-After honoured
    assert len(waits) == 4  # two throttled requests, two failed pages retried
    assert sum(1 for r in graph.requests if r != "first") > 4  # it followed nextLinks
    assert f"{len(lines)} sign-ins from" in text


def test_a_failing_page_stops_the_pull_and_the_same_command_resumes_it(graph: Graph, tmp_path: Path) -> None:
    out = tmp_path / "signins.jsonl"
    second_window_page = orjson.dumps([SINCE.timestamp() + 1800, SINCE.timestamp() + 3600, 25])
    graph.fail = {base64.urlsafe_b64encode(second_window_page).decode(): 100}  # down for good
    waits: list[float] = []
    code, _ = run_pull(graph, out, waits)
    assert code == 1 and len(waits) == 8
    state = orjson.loads(out.with_name(out.name + ".pull-state.json").read_bytes())
    assert state["done_until"] == (SINCE + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    first_window = pulled(out)
    assert len(first_window) == state["signins"] > 0
    with out.open("ab") as handle:
        handle.write(b'{"id": "half-written')  # a crash while writing: resuming cuts it off
    graph.fail = {}
    graph.requests.clear()
    code, _ = run_pull(graph, out, waits)
    assert code == 0
    lines = pulled(out)
    assert lines[: len(first_window)] == first_window
    assert sorted(o["id"] for o in lines) == sorted(o["id"] for o in expected_in_period())
    assert graph.requests.count("first") == 4  # the four windows left, not the one already pulled
    code, _ = run_pull(graph, out, waits)  # complete: nothing more to fetch
    assert code == 0 and pulled(out) == lines and graph.requests.count("first") == 4


def test_pulled_signins_judge_like_the_stream(graph: Graph, tmp_path: Path) -> None:
    out = tmp_path / "signins.jsonl"
    assert run_pull(graph, out, [])[0] == 0
    in_period = [r for r in CORPUS if SINCE <= datetime.fromisoformat(r["properties"]["createdDateTime"]) < UNTIL]
    stream_lines, stream_figures, _ = judged(write("eventhub-lines", in_period, tmp_path))
    pulled_lines, pulled_figures, replay = judged(out)
    assert replay.inputs[0].shape == "graph" and replay.tally.rejected == 0
    assert pulled_lines == stream_lines and pulled_figures == stream_figures


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_says_which_permission_and_licence_it_needs(
    graph: Graph, tmp_path: Path, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    graph.status = status
    code, _ = run_pull(graph, tmp_path / "x.jsonl", [])
    assert code == 1
    assert "AuditLog.Read.All" in capsys.readouterr().err


def test_another_file_is_never_overwritten(graph: Graph, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine.jsonl"
    out.write_text("precious\n")
    code, _ = run_pull(graph, out, [])
    assert code == 1 and out.read_text() == "precious\n"
    assert "exists and is not a pull in progress" in capsys.readouterr().err


def test_graph_settings_are_validated_and_the_token_kept_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPH_URL", "graph.microsoft.com")
    with pytest.raises(ConfigurationError, match="setting GRAPH_URL:"):
        load_settings()
    monkeypatch.setenv("GRAPH_URL", "https://graph.microsoft.us")
    monkeypatch.setenv("GRAPH_ACCESS_TOKEN", "eyTOPSECRET")
    settings = load_settings()
    assert settings.graph_url == "https://graph.microsoft.us" and "TOPSECRET" not in repr(settings)


def test_bad_periods_stop_before_any_request(graph: Graph, tmp_path: Path) -> None:
    settings = load_settings(GRAPH_URL=graph.server.url_for("/"), GRAPH_ACCESS_TOKEN=TOKEN)
    for since, until in (("2026-03-10", "2026-03-09"), ("yesterday", "2026-03-09")):
        args = argparse.Namespace(since=since, until=until, out=str(tmp_path / "x"), window_minutes=60)
        with pytest.raises(ConfigurationError):
            pull.run(args, settings, io.StringIO())
    assert graph.requests == []
