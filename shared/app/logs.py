"""The structured log lines of each batch and tick, for Log Analytics (docs/queries.kql reads them)."""

from __future__ import annotations

import logging
from collections import Counter

from shared.core.verdict import verdict_line
from shared.ingest.pipeline import OVER_LIMIT, Outcome
from shared.telemetry import log_event


def log_outcome(outcome: Outcome) -> None:
    """Structured events for Log Analytics: batch counts, each rejection, each unbound verdict and each alert.

    Bound and unevaluated verdicts are counted, not logged one by one: at a tenant's volume that would be
    hundreds of thousands of trace lines a day for no decision anyone takes.
    """
    tally = outcome.tally
    counts = Counter(signin.verdict for signin in outcome.finals)
    enforcement = Counter(signin.enforcement.label for signin in outcome.finals if signin.unbound)
    if tally.messages or outcome.finals:
        log_event(
            "batch",
            messages=tally.messages,
            records=tally.records,
            skipped=sum(tally.skipped.values()),
            rejected=tally.rejected,
            duplicates=tally.duplicates,
            signins=tally.signins,
            finals=tally.finals,
            bound=counts["bound"],
            unbound=counts["unbound"],
            unevaluated=counts["unevaluated"],
            unbound_report_only=enforcement["report_only"],
            unbound_enforced=enforcement["enforced"],
            set_aside=tally.set_aside,
        )
    for rejection in outcome.dead_letters:
        origin = rejection.origin
        log_event(
            "rejected" if rejection.reason != OVER_LIMIT else "set_aside",
            logging.WARNING,
            reason=rejection.reason,
            partition=origin.partition,
            offset=origin.offset,
            sequence_number=origin.sequence_number,
            record_index=rejection.index,
        )
    for signin in outcome.finals:
        if signin.unbound:
            line = verdict_line(signin)
            log_event("verdict", **{k: line.get(k) for k in _VERDICT_FIELDS})
    for line in outcome.observed:
        if line.get("type") == "alert":
            log_event("alert", logging.WARNING, **{k: line.get(k) for k in _ALERT_FIELDS})


_VERDICT_FIELDS = ("correlation_id", "verdict", "enforcement", "status_codes", "user", "apps", "device_os", "revision")
_ALERT_FIELDS = ("status", "rule", "fingerprint", "group", "at", "title", "severity", "enforcement", "incident")
