"""The circuit breaker: a destination that keeps failing is rested, then probed, so retries do not hammer it.

Pure decisions; the state lives in the outbox (it must survive instances too).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .destination import Outcome


@dataclass(frozen=True, slots=True)
class BreakerState:
    """Consecutive retryable failures of one destination, and until when it is left alone."""

    failures: int = 0
    open_until: float = 0.0
    opened: int = 0  # times it opened in a row (the cool-down grows with it)


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    threshold: int = 5  # consecutive retryable failures that open the circuit
    cooldown: float = 60.0  # first open period; doubles each time a probe fails
    max_cooldown: float = 900.0  # Azure Monitor action groups rest a failing webhook for 15 minutes


def breaker_allows(state: BreakerState, now: float) -> bool:
    """Closed, or open with its cool-down over (half-open: the next attempt is the probe)."""
    return now >= state.open_until


def breaker_after(state: BreakerState, outcome: Outcome, now: float, policy: BreakerPolicy) -> BreakerState:
    """Success closes the circuit; a retryable failure counts and opens it at the threshold.
    A permanent failure (a 4xx) says the destination is up, so it leaves the count alone."""
    if outcome == "delivered":
        return BreakerState()
    if outcome == "failed":
        return state
    failures = state.failures + 1
    if failures < policy.threshold:
        return replace(state, failures=failures)
    cooldown = min(policy.max_cooldown, policy.cooldown * 2.0 ** min(state.opened, 30))
    return BreakerState(failures=failures, open_until=now + cooldown, opened=state.opened + 1)
