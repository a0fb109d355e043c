"""Azure Functions blueprints: the only code that imports `azure.functions`. `function_app.py` registers them."""

from __future__ import annotations

import logging

from shared.app import compose
from shared.settings import current_settings

from . import http, ingest, timers

BLUEPRINTS = (ingest.bp, timers.bp, http.bp)


def start() -> None:
    """Checked when the worker loads the app: a bad setting or rules file stops the start, naming it."""
    # The Azure SDKs log every HTTP request at INFO; the host would ship each one to Application Insights.
    logging.getLogger("azure").setLevel(logging.WARNING)
    compose.validate(current_settings())
    compose.check_state(current_settings())
