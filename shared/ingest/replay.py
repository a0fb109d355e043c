"""Offline replay: messages in, verdicts (and alerts) out, through the function's own pipeline.

Replay also keeps the accounting people need to trust a run: what each input turned
out to be, how many records were judged, skipped (by category) and rejected (by
reason), and which shapes bindwatch reads when most of an input was rejected.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.core.message import Message
from shared.core.record import EXPECTED_SHAPES

from .files import InputStats, batches
from .pipeline import Outcome, Pipeline, Tally

# How long (event time) a final verdict is remembered so a revision replaces it in the summary instead of
# counting a new sign-in. The memory store drops final sign-ins an hour after they settle (a later request
# starts a new sign-in), so two hours is past any revision; memory follows the stream's rate, not its length.
REVISION_HORIZON = 2 * 3600.0


@dataclass
class Replay:
    """Drives the pipeline over messages and keeps what the summary needs, in memory that stays bounded."""

    pipeline: Pipeline
    batch_size: int = 10
    tally: Tally = field(default_factory=Tally)
    verdicts: Counter[str] = field(default_factory=Counter)
    signins: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    inputs: list[InputStats] = field(default_factory=list)
    _recent: dict[str, tuple[str, float]] = field(default_factory=dict)  # correlation id -> (verdict, clock)

    def run(self, messages: Iterable[Message]) -> Iterator[Outcome]:
        """Each step's outcome, accounted; no line is built (the report and the benchmarks need none)."""
        for batch in batches(messages, self.batch_size):
            outcome = self.pipeline.ingest(batch)
            self._account(outcome)
            yield outcome
        outcome = self.pipeline.drain()
        self._account(outcome)
        yield outcome

    def steps(self, messages: Iterable[Message]) -> Iterator[tuple[Outcome, list[dict[str, Any]]]]:
        """Each step's outcome with its lines (`Outcome.lines` builds them anew on each read: here, once)."""
        for outcome in self.run(messages):
            yield outcome, outcome.lines

    def _account(self, outcome: Outcome) -> None:
        """The summary's counts, from the sign-ins declared final and the observers' lines."""
        self.tally.add(outcome.tally)
        self.rejected_by_reason.update(rejection.reason for rejection in outcome.rejections)
        stamp = outcome.clock if outcome.clock is not None else 0.0
        for signin in outcome.finals:
            self._count(signin.correlation_id, signin.verdict, stamp)
        for line in outcome.observed:
            if line.get("type") == "alert":
                self.alerts[line.get("status", "")] += 1
        self._forget(stamp - REVISION_HORIZON)

    def _count(self, correlation_id: str, verdict: str, stamp: float) -> None:
        previous = self._recent.pop(correlation_id, None)
        if previous is None:
            self.signins += 1
        else:
            self.verdicts[previous[0]] -= 1
        self.verdicts[verdict] += 1
        self._recent[correlation_id] = (verdict, stamp)

    def _forget(self, before: float) -> None:
        # Insertion order is clock order (the event clock only moves forward): the oldest come first.
        while self._recent:
            oldest = next(iter(self._recent))
            if self._recent[oldest][1] >= before:
                return
            del self._recent[oldest]

    def summary(self) -> dict[str, Any]:
        tally = self.tally
        return {
            "type": "summary",
            "messages": tally.messages,
            "records": tally.records,
            "skipped": sum(tally.skipped.values()),
            "rejected": tally.rejected,
            "duplicates": tally.duplicates,
            "requests": tally.requests,
            "signins": self.signins,
            "bound": self.verdicts["bound"],
            "unbound": self.verdicts["unbound"],
            "unevaluated": self.verdicts["unevaluated"],
            "revised": tally.reopened,
            "set_aside": tally.set_aside,
            "skipped_by_category": dict(sorted(tally.skipped.items())),
            "rejected_by_reason": dict(self.rejected_by_reason.most_common()),
            "alerts": dict(sorted(self.alerts.items())),
            "inputs": [stats.as_dict() for stats in self.inputs],
        }

    def input_section(self) -> dict[str, Any]:
        """What was read and what could not be: the report's Input section (text, JSON and HTML)."""
        tally = self.tally
        mostly_rejected = tally.rejected > tally.records
        return {
            "inputs": [stats.as_dict() for stats in self.inputs],
            "messages": tally.messages,
            "records": tally.records,
            "policy_changes": len(tally.changes),
            "duplicates": tally.duplicates,
            "skipped": sum(tally.skipped.values()),
            "skipped_by_category": dict(sorted(tally.skipped.items())),
            "rejected": tally.rejected,
            "rejected_by_reason": dict(self.rejected_by_reason.most_common()),
            "mostly_rejected": mostly_rejected,
            "expected_shapes": list(EXPECTED_SHAPES) if mostly_rejected or not (tally.records or tally.changes) else [],
        }
