"""How much history is enough to decide: for the whole report, and for one user.

A short export proves little. Microsoft's rollout guidance for Token Protection is to
run the policy in report-only mode long enough to cover normal application use, and
to judge a user only after their sign-ins came out bound. bindwatch makes that concrete:

- the period: at least 7 days, so the weekly cycle is in it (apps opened once a week,
  weekend and travel devices, a patch day's re-registrations);
- a user: at least 5 sign-ins on at least 2 different days, because one sign-in shows one
  app on one device, and people use several of both.

Below these, the report warns and does not call anyone "ready".
"""

from __future__ import annotations

from typing import Any

ENOUGH_PERIOD_DAYS = 7
ENOUGH_USER_SIGNINS = 5
ENOUGH_USER_DAYS = 2
DAY = 86400.0

PERIOD_WHY = (
    f"at least {ENOUGH_PERIOD_DAYS} days of report-only logs, so that the weekly cycle is in them (apps opened "
    "once a week, weekend and travel devices, patch-day re-registrations); Microsoft advises analysing long enough "
    "to cover normal application use before enforcing"
)
USER_WHY = (
    f"at least {ENOUGH_USER_SIGNINS} sign-ins on at least {ENOUGH_USER_DAYS} different days: one sign-in shows one app "
    "on one device, and people use several of both"
)


def enough_history(signins: int, days: int) -> bool:
    """A user's history is enough to call them ready (see the module docstring for why)."""
    return signins >= ENOUGH_USER_SIGNINS and days >= ENOUGH_USER_DAYS


def period_evidence(seconds: float) -> dict[str, Any]:
    """Whether the period is long enough to decide, and what would be."""
    enough = seconds >= ENOUGH_PERIOD_DAYS * DAY
    return {
        "seconds": seconds,
        "enough_seconds": ENOUGH_PERIOD_DAYS * DAY,
        "enough": enough,
        "why": PERIOD_WHY,
        "user_rule": USER_WHY,
    }
