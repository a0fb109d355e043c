"""The timers: settle sign-ins (and resolve alerts, retry deliveries) every minute; expire old state daily."""

# No `from __future__ import annotations`: the Python worker reads these signatures' annotations as types.

import time

import azure.functions as func

from .worker import WORKER

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="0 */1 * * * *", run_on_startup=False, use_monitor=True)
def settle_signins(timer: func.TimerRequest) -> None:
    """Close the settle window of sign-ins whose requests stopped coming."""
    WORKER.ingest().tick()


@bp.timer_trigger(arg_name="timer", schedule="0 17 3 * * *", run_on_startup=False, use_monitor=True)
def expire_signins(timer: func.TimerRequest) -> None:
    """Delete sign-ins older than RETENTION_DAYS (daily, off the hour)."""
    WORKER.ingest().expire(time.time())
