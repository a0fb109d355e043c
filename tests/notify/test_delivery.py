"""Delivery: the pure retry and breaker decisions, and the outbox-backed shell against a real HTTP server."""

from __future__ import annotations

import base64
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import orjson
import pytest
from azure.data.tables import TableServiceClient
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from shared.app import compose
from shared.core.alert import Notification
from shared.core.clock import FixedClock
from shared.notify.breaker import BreakerPolicy, BreakerState, breaker_after, breaker_allows
from shared.notify.delivery import Delivery
from shared.notify.destination import Answer, Outgoing
from shared.notify.outbox import Entry, MemoryOutbox
from shared.notify.pagerduty import PagerDutyNotifier
from shared.notify.retry import RetryPolicy, backoff, parse_retry_after, retry_delay, settle
from shared.notify.teams import TeamsNotifier
from shared.notify.transport import HttpTransport
from shared.notify.webhook import WebhookNotifier
from shared.settings import load_settings
from shared.storage.outbox_table import TableOutbox
from shared.synth.alerts import sample

SECRET = "whsec_" + base64.b64encode(b"delivery-test-secret-0123456789!").decode()
FAST = RetryPolicy(base=0.05, cap=0.2, lease=5.0)
NOW = 1_800_000_000.0

# --- pure: Retry-After, backoff, breaker, settle ---------------------------------------------------


def test_retry_after_in_seconds_and_as_a_date() -> None:
    assert parse_retry_after("120", NOW) == 120
    assert parse_retry_after(" 0 ", NOW) == 0
    date = format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)
    assert parse_retry_after(date, NOW) == pytest.approx(90)
    past = format_datetime(datetime.fromtimestamp(NOW - 90, UTC), usegmt=True)
    assert parse_retry_after(past, NOW) == 0
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("-5", NOW) is None


@given(st.integers(0, 10**9))
def test_any_delta_seconds_is_read_exactly(seconds: int) -> None:
    assert parse_retry_after(str(seconds), NOW) == seconds


@given(st.integers(-(10**6), 10**8))
def test_any_http_date_is_read_relative_to_now(offset: int) -> None:
    date = format_datetime(datetime.fromtimestamp(NOW + offset, UTC), usegmt=True)
    assert parse_retry_after(date, NOW) == pytest.approx(max(0, offset))


@given(st.text(max_size=60))
def test_any_header_text_gives_none_or_a_wait(value: str) -> None:
    result = parse_retry_after(value, NOW)
    assert result is None or result >= 0


@given(st.integers(0, 10_000), st.floats(0, 1))
def test_backoff_grows_with_jitter_and_stays_under_the_cap(attempts: int, rand: float) -> None:
    policy = RetryPolicy(base=2.0, cap=300.0)
    step = min(300.0, 2.0 * 2.0 ** min(max(attempts - 1, 0), 30))
    assert step / 2 <= backoff(attempts, policy, rand) <= step <= 300.0


@given(st.integers(1, 50), st.none() | st.floats(0, 1e7), st.floats(0, 1))
def test_retry_after_is_honoured_up_to_its_cap(attempts: int, asked: float | None, rand: float) -> None:
    policy = RetryPolicy()
    delay = retry_delay(attempts, asked, policy, rand)
    assert delay >= backoff(attempts, policy, rand)
    if asked is not None:
        assert delay >= min(asked, policy.max_retry_after)
    assert delay <= max(policy.cap, policy.max_retry_after)


def test_the_breaker_opens_at_the_threshold_probes_and_closes() -> None:
    policy = BreakerPolicy(threshold=3, cooldown=60, max_cooldown=900)
    state = BreakerState()
    for _ in range(2):
        state = breaker_after(state, "retry", NOW, policy)
    assert breaker_allows(state, NOW) and state.failures == 2
    state = breaker_after(state, "failed", NOW, policy)  # a 4xx: the destination is up
    assert state.failures == 2
    state = breaker_after(state, "retry", NOW, policy)
    assert not breaker_allows(state, NOW + 59) and breaker_allows(state, NOW + 60)
    probe_failed = breaker_after(state, "retry", NOW + 60, policy)  # half-open probe fails: longer rest
    assert probe_failed.open_until == NOW + 60 + 120
    assert breaker_after(probe_failed, "delivered", NOW + 200, policy) == BreakerState()


def test_the_cool_down_is_capped() -> None:
    state = BreakerState(failures=10, opened=20)
    assert breaker_after(state, "retry", NOW, BreakerPolicy()).open_until == NOW + 900


def make_entry(created: float = NOW) -> Entry:
    notification = Notification("teams", [sample("spike")], 1.0)
    return Entry("teams", notification, created=created, next_at=created)


def test_settle_schedules_the_retry_no_sooner_than_retry_after() -> None:
    result = settle(
        make_entry(), "retry", Answer(429, retry_after="30"), NOW, policy=RetryPolicy(), rand=0.0, describe=""
    )
    assert (result.state, result.attempts, result.next_at) == ("pending", 1, NOW + 30)


def test_settle_gives_up_after_the_window() -> None:
    entry = make_entry(created=NOW - 49 * 3600)
    result = settle(entry, "retry", Answer(503), NOW, policy=RetryPolicy(), rand=0.5, describe="503: down")
    assert result.state == "failed" and "gave up" in result.answer


@pytest.mark.parametrize(("outcome", "state"), [("delivered", "delivered"), ("failed", "failed")])
def test_settle_records_final_states(outcome: str, state: str) -> None:
    result = settle(make_entry(), outcome, Answer(400), NOW, policy=RetryPolicy(), rand=0.5, describe="400: no")  # type: ignore[arg-type]
    assert (result.state, result.http_status, result.answer, result.lease_until) == (state, 400, "400: no", 0.0)


# --- the shell against a real HTTP server ----------------------------------------------------------


class Script:
    """A destination that plays a list of behaviours, one per request, then answers 202; it records each request."""

    def __init__(self, server: HTTPServer, path: str, steps: list[Callable[[Request], Response | None]]) -> None:
        self.steps = list(steps)
        self.requests: list[tuple[float, dict[str, str], bytes]] = []
        self.accepted: list[bytes] = []
        self._lock = threading.Lock()
        server.expect_request(path, method="POST").respond_with_handler(self)
        self.url = server.url_for(path)

    def __call__(self, request: Request) -> Response:
        with self._lock:
            self.requests.append((time.time(), dict(request.headers.items()), request.get_data()))
            step = self.steps.pop(0) if self.steps else None
        response = step(request) if step else None
        if response is None:
            response = Response("", status=202)
        if 200 <= response.status_code < 300:
            self.accepted.append(request.get_data())
        return response


def status(code: int, body: str = "", headers: dict[str, str] | None = None) -> Callable[[Request], Response]:
    return lambda _request: Response(body, status=code, headers=headers or {})


def drop(request: Request) -> Response:
    """Close the connection without an answer."""
    sock: socket.socket = request.environ["werkzeug.socket"]
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    return Response("", status=202)  # never reaches the client


def slow(seconds: float) -> Callable[[Request], Response]:
    def answer(_request: Request) -> Response:
        time.sleep(seconds)
        return Response("", status=202)

    return answer


@pytest.fixture
def transport() -> Iterator[HttpTransport]:
    client = HttpTransport(timeout=httpx.Timeout(0.5))
    yield client
    client.close()


def notifications(receiver: str, count: int = 1) -> list[Notification]:
    return [Notification(receiver, [sample("spike", at=NOW + i)], NOW + i) for i in range(count)]


def delivery(outbox, notifier, transport, **kwargs) -> Delivery:  # type: ignore[no-untyped-def]
    kwargs.setdefault("policy", FAST)
    return Delivery(outbox, [notifier], transport=transport, **kwargs)


def test_a_failing_destination_is_retried_until_it_accepts_with_the_same_webhook_id(
    httpserver: HTTPServer, transport: HttpTransport
) -> None:
    script = Script(httpserver, "/hook", [status(503), status(500, "oops"), status(408)])
    work = delivery(MemoryOutbox(), WebhookNotifier(script.url, SECRET), transport)
    first = work.submit(notifications("webhook"))
    assert (first.pending, first.delivered) == (1, 0)
    report = work.drain(10)
    assert report.ok and report.delivered == 1
    assert len(script.requests) == 4 and len(script.accepted) == 1
    ids = {headers["Webhook-Id"] for _, headers, _ in script.requests}
    assert ids == {notifications("webhook")[0].id}
    for _, headers, body in script.requests:
        Webhook(SECRET).verify(body, {k.lower(): v for k, v in headers.items()})


def test_retry_after_is_honoured(httpserver: HTTPServer, transport: HttpTransport) -> None:
    script = Script(httpserver, "/teams", [status(429, "slow down", {"Retry-After": "1"})])
    outbox = MemoryOutbox()
    work = delivery(outbox, TeamsNotifier(script.url), transport)
    work.submit(notifications("teams"))
    (entry,) = list(outbox.entries())
    assert entry.http_status == 429 and entry.next_at - entry.updated >= 1.0
    assert work.drain(10).ok
    (first, _, _), (second, _, _) = script.requests
    assert second - first >= 1.0


def test_a_dropped_connection_and_a_slow_answer_are_retried(httpserver: HTTPServer, transport: HttpTransport) -> None:
    script = Script(httpserver, "/teams", [drop, slow(1.0)])
    outbox = MemoryOutbox()
    work = delivery(outbox, TeamsNotifier(script.url), transport)
    work.submit(notifications("teams"))
    (entry,) = list(outbox.entries())
    assert entry.http_status is None and entry.answer == "RemoteProtocolError"
    assert work.drain(15).ok
    errors = [e.answer for e in outbox.entries()]
    assert errors == ["202: "]
    assert len(script.requests) == 3  # dropped, timed out, accepted


def test_a_4xx_is_failed_with_the_destinations_answer_redacted(
    httpserver: HTTPServer, transport: HttpTransport
) -> None:
    script = Script(httpserver, "/teams", [])
    url = script.url + "?sig=SAS0very0secret"
    script.steps.append(status(400, f"Bad Request: invalid card posted to {url}"))
    outbox = MemoryOutbox()
    work = delivery(outbox, TeamsNotifier(url), transport)
    report = work.submit(notifications("teams"))
    assert not report.ok and report.failed == 1
    assert work.drain(1).failed == 1
    (entry,) = list(outbox.entries())
    assert entry.state == "failed" and entry.http_status == 400
    assert entry.answer.startswith("400: Bad Request: invalid card") and "SAS0very0secret" not in entry.answer
    assert len(script.requests) == 1


def test_the_circuit_opens_and_stops_hammering(httpserver: HTTPServer, transport: HttpTransport) -> None:
    script = Script(httpserver, "/hook", [status(503)] * 100)
    outbox = MemoryOutbox()
    work = delivery(outbox, WebhookNotifier(script.url), transport, breaker=BreakerPolicy(threshold=3, cooldown=0.5))
    report = work.submit(notifications("webhook", 6))
    assert report.pending == 6
    assert len(script.requests) == 3  # the other three were held, not sent
    assert outbox.load_breaker("webhook").open_until > time.time()
    started = time.monotonic()
    report = work.drain(1.2)
    assert time.monotonic() - started < 3
    assert not report.ok and report.pending == 6
    assert len(script.requests) <= 6  # one probe per cool-down, not a retry storm


def test_nothing_secret_is_logged(
    httpserver: HTTPServer, transport: HttpTransport, caplog: pytest.LogCaptureFixture
) -> None:
    script = Script(httpserver, "/hook", [status(503), status(401, "no: " + SECRET)])
    url = script.url + "?token=T0K3Nsecret"
    caplog.set_level(logging.DEBUG)
    work = delivery(MemoryOutbox(), WebhookNotifier(url, SECRET), transport)
    work.submit(notifications("webhook"))
    work.drain(5)
    ours = [r for r in caplog.records if r.name != "werkzeug"]  # werkzeug's lines are the test server's own
    text = "\n".join(r.getMessage() for r in ours)
    assert '"destination":"webhook"' in text and '"status":"failed"' in text and '"http_status":401' in text
    assert "T0K3Nsecret" not in text and SECRET not in text and "127.0.0.1" not in text


def test_an_unconfigured_destination_is_failed_not_forgotten(transport: HttpTransport) -> None:
    work = delivery(MemoryOutbox(), TeamsNotifier("http://127.0.0.1:9/"), transport)
    report = work.submit(notifications("pagerduty"))
    assert report.failed == 1 and report.undelivered[0][2] == "failed"


def test_drain_is_bounded_and_reports_what_stayed(transport: HttpTransport) -> None:
    work = delivery(MemoryOutbox(), TeamsNotifier("http://127.0.0.1:9/refused"), transport)
    work.submit(notifications("teams", 2))
    started = time.monotonic()
    report = work.drain(1.0)
    assert time.monotonic() - started < 2.5
    assert not report.ok and report.pending == 2 and len(report.undelivered) == 2


def test_the_timer_retries_with_a_fixed_clock(httpserver: HTTPServer, transport: HttpTransport) -> None:
    script = Script(httpserver, "/teams", [status(502)])
    clock = FixedClock(NOW)
    work = Delivery(MemoryOutbox(), [TeamsNotifier(script.url)], clock, transport=transport, rand=lambda: 0.0)
    work.submit(notifications("teams"))
    assert work.retry_due() == 0  # not due yet: backoff is 1 s with this policy and rand
    clock.advance(1.0)
    assert work.retry_due() == 1
    assert work.report().ok and len(script.requests) == 2


# --- restarts: a new Delivery over the same Azurite tables --------------------------------------------


def table_outbox(connection: str, prefix: str) -> TableOutbox:
    return TableOutbox(TableServiceClient.from_connection_string(connection), prefix)


def test_a_restart_loses_nothing_and_sends_nothing_twice(
    httpserver: HTTPServer, transport: HttpTransport, storage_connection: str, table_prefix: str
) -> None:
    script = Script(httpserver, "/hook", [status(503)] * 3)
    batch = notifications("webhook", 3)
    before = delivery(table_outbox(storage_connection, table_prefix), WebhookNotifier(script.url), transport)
    assert before.submit(batch).pending == 3
    # the instance is gone; a new one starts over the same tables
    after = delivery(table_outbox(storage_connection, table_prefix), WebhookNotifier(script.url), transport)
    assert after.retry_due(time.time() + 60) == 3
    assert len(script.accepted) == 3
    again = after.submit(batch)  # detection re-submits after its own restart
    assert again.ok and again.delivered == 3
    assert after.retry_due(time.time() + 3600) == 0
    assert len(script.accepted) == 3 and len(script.requests) == 6


class Crash(BaseException):
    """The process dies (not an error the code handles)."""


class CrashingTransport:
    def __init__(self, inner: HttpTransport, after: int) -> None:
        self.inner, self.left = inner, after

    def send(self, outgoing: Outgoing, deadline: float | None = None) -> Answer:
        if self.left == 0:
            raise Crash
        self.left -= 1
        return self.inner.send(outgoing)


def test_a_crash_mid_notification_resumes_with_the_parts_not_yet_accepted(
    httpserver: HTTPServer, transport: HttpTransport, storage_connection: str, table_prefix: str
) -> None:
    script = Script(httpserver, "/enqueue", [])
    alerts = [sample(kind, "firing") for kind in ("spike", "ratio", "new")]
    batch = [Notification("pagerduty", alerts, NOW)]
    notifier = PagerDutyNotifier("R" * 32, script.url)
    before = delivery(table_outbox(storage_connection, table_prefix), notifier, CrashingTransport(transport, after=1))
    with pytest.raises(Crash):
        before.submit(batch)
    assert len(script.accepted) == 1
    after = delivery(table_outbox(storage_connection, table_prefix), notifier, transport)
    assert after.retry_due(time.time() + 1) == 0  # the dead instance's lease still holds it
    assert after.retry_due(time.time() + FAST.lease + 1) == 1
    keys = [orjson.loads(body)["dedup_key"] for body in script.accepted]
    assert keys == [a.fingerprint for a in alerts]  # each part accepted exactly once, in order


def test_build_delivery_from_settings() -> None:
    assert compose.delivery(load_settings(), MemoryOutbox()) is None
    built = compose.delivery(load_settings(ALERT_WEBHOOK_URL="https://hooks.example/in"), MemoryOutbox())
    assert built is not None and sorted(built.notifiers) == ["webhook"]
    built.close()
