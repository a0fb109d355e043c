"""Retrying, as a stage of its own: how long to wait, and when an entry is delivered, pending or failed for good.

Pure functions of (entry, answer, now): exponential backoff with jitter, never less
than the destination's Retry-After (capped), and giving up after `give_up_after`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC
from email.utils import parsedate_to_datetime

from .destination import Answer, Outcome
from .outbox import Entry


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 2.0  # first backoff (seconds); doubles per attempt
    cap: float = 300.0  # longest computed backoff
    max_retry_after: float = 3600.0  # a Retry-After beyond this is capped (a typo must not park alerts for days)
    give_up_after: float = 48 * 3600.0  # pending longer than this (since written) is recorded as failed
    lease: float = 120.0  # how long a sender holds an entry while sending one part


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # "²".isdigit() is True too
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def backoff(attempts: int, policy: RetryPolicy, rand: float) -> float:
    """'Equal jitter': half the exponential step fixed, half random, so retries spread but never hammer."""
    step = min(policy.cap, policy.base * 2.0 ** min(max(attempts - 1, 0), 30))
    return step / 2 + step / 2 * rand


def retry_delay(attempts: int, retry_after: float | None, policy: RetryPolicy, rand: float) -> float:
    """The computed backoff, or the destination's Retry-After when it asks for longer (capped)."""
    asked = min(retry_after, policy.max_retry_after) if retry_after is not None else 0.0
    return max(backoff(attempts, policy, rand), asked)


def settle(
    entry: Entry, outcome: Outcome, answer: Answer, now: float, *, policy: RetryPolicy, rand: float, describe: str
) -> Entry:
    """The entry after an attempt: delivered, failed for good, or pending until the next due time."""
    result = replace(entry, attempts=entry.attempts + 1, http_status=answer.status, answer=describe)
    result.updated, result.lease_until = now, 0.0
    if outcome == "delivered":
        result.state = "delivered"
    elif outcome == "failed":
        result.state = "failed"
    elif now - entry.created >= policy.give_up_after:
        result.state = "failed"
        result.answer = f"gave up after {result.attempts} attempts; last: {describe}"
    else:
        result.next_at = now + retry_delay(result.attempts, parse_retry_after(answer.retry_after, now), policy, rand)
    return result
