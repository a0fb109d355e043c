"""Structured log events: one line each, `BINDWATCH {json}`, so a KQL query over `traces` finds them.

The Functions host forwards Python log records to Application Insights as plain
messages; a fixed prefix and a JSON body survive that trip intact.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

PREFIX = "BINDWATCH "
logger = logging.getLogger("bindwatch")


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event. Callers pass no secrets: destinations are named, never their URLs."""
    if logger.isEnabledFor(level):
        body = orjson.dumps({"event": event, **fields}, default=str).decode()
        logger.log(level, "%s%s", PREFIX, body)
