"""Delivery is bounded (issue 13, finding 4): what it reads of a reply, how long a request may take, and its lease.

Real local HTTP servers (pytest-httpserver) play the hostile destinations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from shared.core.alert import Notification
from shared.core.clock import SystemClock
from shared.notify.delivery import Delivery
from shared.notify.destination import Outgoing
from shared.notify.outbox import MemoryOutbox
from shared.notify.retry import RetryPolicy
from shared.notify.transport import REPLY_BYTES, HttpTransport
from shared.notify.webhook import WebhookNotifier
from shared.synth.alerts import sample


class Sent:
    """Counts the bytes a handler managed to hand to the network before the client went away."""

    def __init__(self) -> None:
        self.bytes = 0
        self.requests = 0


def huge_reply(sent: Sent, chunk: int = 1 << 20, chunks: int = 1024):  # type: ignore[no-untyped-def]
    def handler(_request: Request) -> Response:
        sent.requests += 1

        def body() -> Iterator[bytes]:
            for _ in range(chunks):  # 1 GiB if anyone reads it all
                sent.bytes += chunk
                yield b"x" * chunk

        return Response(body(), status=500, content_type="text/plain")

    return handler


def trickle(sent: Sent, every: float = 0.3):  # type: ignore[no-untyped-def]
    def handler(_request: Request) -> Response:
        sent.requests += 1

        def body() -> Iterator[bytes]:
            while True:  # one byte at a time, forever: no single read ever times out
                time.sleep(every)
                sent.bytes += 1
                yield b"."

        return Response(body(), status=200, content_type="text/plain")

    return handler


def test_a_gigabyte_reply_is_read_a_few_kilobytes_deep(httpserver: HTTPServer) -> None:
    sent = Sent()
    httpserver.expect_request("/huge").respond_with_handler(huge_reply(sent))
    answer = HttpTransport().send(Outgoing("m", httpserver.url_for("/huge"), b"{}"))
    assert answer.status == 500 and len(answer.text) <= 500
    time.sleep(0.5)  # let the server notice the closed connection
    assert sent.bytes < 64 * (1 << 20)  # it stopped far short of 1 GiB: we read REPLY_BYTES and hung up
    assert REPLY_BYTES <= 8192


def test_a_trickling_destination_is_abandoned_at_the_deadline(httpserver: HTTPServer) -> None:
    sent = Sent()
    httpserver.expect_request("/slow").respond_with_handler(trickle(sent))
    answer = HttpTransport(deadline=1.0).send(Outgoing("m", httpserver.url_for("/slow"), b"{}"))
    assert answer.status is None and "within 1 s" in answer.error


def test_a_slow_send_keeps_its_lease_so_no_second_instance_sends_it(httpserver: HTTPServer) -> None:
    """The old lease (120 s) could run out under a send with no deadline; a second instance then sent again."""
    sent = Sent()
    httpserver.expect_request("/hook").respond_with_handler(trickle(sent, every=0.2))
    outbox = MemoryOutbox()
    policy = RetryPolicy(lease=2.0, base=60.0)  # a lease shorter than the slow send would take unbounded
    notifier = WebhookNotifier(httpserver.url_for("/hook"))

    def instance() -> Delivery:
        return Delivery(outbox, [notifier], SystemClock(), transport=HttpTransport(deadline=1.0), policy=policy)

    first = instance()
    first.enqueue([Notification("webhook", [sample("spike")], 1.0)])
    sending = threading.Thread(target=first.flush)
    sending.start()
    other = instance()
    while sending.is_alive():
        other.retry_due()  # the second instance's timer, again and again while the first one sends
        time.sleep(0.05)
    sending.join()
    assert sent.requests == 1
    (entry,) = list(outbox.entries())
    assert entry.state == "pending" and entry.attempts == 1 and "within 1 s" in entry.answer


def test_first_attempts_stop_at_their_budget_and_leave_the_rest_pending(httpserver: HTTPServer) -> None:
    sent = Sent()
    httpserver.expect_request("/hook").respond_with_handler(trickle(sent, every=0.2))
    outbox = MemoryOutbox()
    notifier = WebhookNotifier(httpserver.url_for("/hook"))
    delivery = Delivery(outbox, [notifier], SystemClock(), transport=HttpTransport(deadline=5.0))
    delivery.enqueue([Notification("webhook", [sample("spike", at=1.0 + i)], 1.0 + i) for i in range(5)])
    attempted = delivery.flush(budget=1.0)
    assert attempted == 1  # the first one used the whole budget (its deadline cut to what was left)
    states = sorted(e.state for e in outbox.entries())
    assert states == ["pending"] * 5
    assert sum(e.attempts for e in outbox.entries()) == 1


@pytest.fixture(autouse=True)
def _quick_server_shutdown(httpserver: HTTPServer) -> Iterator[None]:
    yield
    httpserver.clear()
