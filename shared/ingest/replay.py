"""Offline replay: messages in, verdicts (and alerts) out, through the function's own pipeline."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.core.message import Message

from .files import batches
from .pipeline import Outcome, Pipeline, Tally


@dataclass
class Replay:
    """Drives the pipeline over files and keeps what the summary needs."""

    pipeline: Pipeline
    batch_size: int = 10
    tally: Tally = field(default_factory=Tally)
    last_verdicts: dict[str, str] = field(default_factory=dict)
    alerts: Counter[str] = field(default_factory=Counter)

    def run(self, messages: Iterable[Message]) -> Iterator[Outcome]:
        for batch in batches(messages, self.batch_size):
            yield self._account(self.pipeline.ingest(batch))
        yield self._account(self.pipeline.drain())

    def _account(self, outcome: Outcome) -> Outcome:
        self.tally.add(outcome.tally)
        for line in outcome.lines:
            if line.get("type") == "verdict":
                self.last_verdicts[line["correlation_id"]] = line["verdict"]
            elif line.get("type") == "alert":
                self.alerts[line.get("status", "")] += 1
        return outcome

    def summary(self) -> dict[str, Any]:
        verdicts = Counter(self.last_verdicts.values())
        tally = self.tally
        return {
            "type": "summary",
            "messages": tally.messages,
            "records": tally.records,
            "skipped": sum(tally.skipped.values()),
            "rejected": tally.rejected,
            "duplicates": tally.duplicates,
            "requests": tally.requests,
            "signins": len(self.last_verdicts),
            "bound": verdicts["bound"],
            "unbound": verdicts["unbound"],
            "unevaluated": verdicts["unevaluated"],
            "revised": tally.reopened,
            "set_aside": tally.set_aside,
            "skipped_by_category": dict(sorted(tally.skipped.items())),
            "alerts": dict(sorted(self.alerts.items())),
        }
