"""The detection observer: counts each batch into windows, evaluates the rules, runs the alert lifecycle.

The shell around the pure parts (window.py, grouping.py, kinds/, lifecycle.py): per batch it loads
the shared state once, aggregates the batch's sign-ins in memory, merges them
into the stored buckets with one conditional write per bucket, evaluates every
rule at the event clock, and writes an alert state only when a decision is made
(conditionally: the instance whose write wins emits the decision, so a second
instance or a restart neither repeats nor loses one). A batch without records
(the timer's tick) evaluates too, which resolves alerts whose traffic stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.core.alert import Alert, Notification, fingerprint
from shared.ingest.pipeline import Batch
from shared.ingest.store import Update

from .content import render
from .evaluation import evaluate, moment_for
from .grouping import Dimensions, Grouper, describe_signin, group_key
from .kinds import Finding, kind_of
from .lifecycle import FIRING, AlertState, Timing, due, enqueue, notifications, step, take
from .memory import RuleState
from .routing import receivers, silenced
from .rules import Rule, RulesFile
from .state import DetectionStore, StateConflict
from .window import Tally, is_late, minute_of, steps

log = logging.getLogger("bindwatch.detection")
RETRIES = 8
PRUNE_EVERY = 3600.0  # event seconds between clean-ups of old window buckets (on the timer's tick)
MAX_CATCHUP = 6 * 3600.0  # a clock that jumps further is evaluated from this far back only


@dataclass(slots=True)
class Pass:
    """One batch's work in progress."""

    clock: float  # the event time being evaluated
    final: bool
    rules: dict[str, RuleState]
    alerts: dict[str, AlertState]
    changed: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)  # rule -> memory updates to write
    decided: list[Alert] = field(default_factory=list)


class Detector:
    """The pipeline observer for alerts: `observe` returns the alert lines and hands notifications to `handoff`."""

    def __init__(
        self,
        rules: RulesFile,
        store: DetectionStore,
        destinations: Sequence[str] = (),
        public_url: str | None = None,
        handoff: Callable[[list[Notification]], object] | None = None,
    ) -> None:
        self.rules = rules
        self.handoff = handoff  # the durable outbox write, done before alert states record them as sent
        self.grouper = Grouper()
        self.store = store
        self.destinations = list(destinations)
        self.public_url = public_url
        self.late = 0  # sign-ins that came after their window closed (allowed lateness), not counted
        self._pruned_at: float | None = None
        self._through: float | None = None  # the event clock this instance last evaluated at

    def observe(self, batch: Batch) -> list[dict[str, Any]]:
        clock = batch.clock
        if clock is None or not self.rules.active_rules:
            return []
        rules, alerts = self.store.load_states()
        start = self._start(batch, clock)
        work = Pass(start, batch.final, rules, alerts)
        reference = batch.previous_clock if batch.previous_clock is not None else self._through
        tally = self._count(batch.updates, work, reference)
        self._save_rules(work)
        first = minute_of(start - self.rules.span_seconds()) - 1
        buckets = self.store.merge_buckets(tally.buckets, first, minute_of(clock), batch.key)
        for at in steps(start, clock):
            work.clock = at
            for rule in self.rules.active_rules:
                self._evaluate(rule, buckets, work)
            self._flush(work, final=batch.final and at == clock)
        self._through = clock if self._through is None else max(self._through, clock)
        if not batch.updates:
            self._prune(clock)
        return [a.line() for a in work.decided]

    def _start(self, batch: Batch, clock: float) -> float:
        """Where evaluation picks up: the clock before this batch, else the earliest record in it."""
        known = [c for c in (batch.previous_clock, self._through) if c is not None]
        start = max(known) if known else min((u.first_at for u in batch.updates), default=clock)
        return min(clock, max(start, clock - MAX_CATCHUP))

    # --- counting ---

    def _count(self, updates: Sequence[Update], work: Pass, reference: float | None) -> Tally:
        """Aggregate the batch in memory; `reference` is the clock lateness is measured from (None: nothing late)."""
        tally = Tally()
        lateness = self.rules.defaults.allowed_lateness
        clock = float("-inf") if reference is None else reference
        created = [update.first_at for update in updates if update.created]
        if created:
            self._note(work, "start", min(created))  # only the earliest traffic matters to a rule's warm-up
        for update in updates:
            if update.created:
                if is_late(update.first_at, clock, lateness):
                    tally.late += 1
                else:
                    self._count_judged(update, tally)
            if update.became_unbound and update.unbound_at is not None:
                if is_late(update.unbound_at, clock, lateness):
                    tally.late += 1
                else:
                    self._count_unbound(update, update.unbound_at, tally, work)
        self.late += tally.late
        return tally

    def _count_judged(self, update: Update, tally: Tally) -> None:
        minute = minute_of(update.first_at)
        for rule, key in self.grouper.all_keys(self.rules.active_rules, update.signin, unbound=False):
            tally.counts(minute, rule.name, key).judged += 1

    def _count_unbound(self, update: Update, at: float, tally: Tally, work: Pass) -> None:
        minute = minute_of(at)
        described = describe_signin(update.signin)
        dimensions = Dimensions(update.signin)
        for rule in self.rules.active_rules:
            kind = kind_of(rule)
            for key in self.grouper.keys(rule, dimensions, unbound=True):
                tally.counts(minute, rule.name, key).add_unbound(described, update.signin.correlation_id)
                memory = kind.remember(rule, key, at)
                if memory is not None:
                    self._note(work, *memory, rule=rule.name)

    def _note(self, work: Pass, *operation: Any, rule: str | None = None) -> None:
        """Apply a memory update to one rule (or all) and remember it if it needs writing."""
        names = [rule] if rule else [r.name for r in self.rules.active_rules]
        for name in names:
            state = work.rules.setdefault(name, RuleState(name))
            if state.apply(operation):
                work.changed.setdefault(name, []).append(operation)

    def _save_rules(self, work: Pass) -> None:
        for name, operations in work.changed.items():
            state = work.rules[name]
            for _ in range(RETRIES):
                if self.store.save_rule(state):
                    break
                state = self.store.load_rule(name) or RuleState(name)
                for operation in operations:
                    state.apply(operation)
            else:
                raise StateConflict(f"rule memory of {name} kept changing")
            work.rules[name] = state

    # --- evaluation and lifecycle ---

    def _evaluate(self, rule: Rule, buckets: Any, work: Pass) -> None:
        live = {s.fingerprint: s for s in work.alerts.values() if s.rule == rule.name and s.status == FIRING}
        keys, frozen = [], {}
        for state in live.values():
            try:
                key = group_key(state.group[d] for d in rule.group_by)
            except KeyError:
                continue  # the rule's group_by changed; the old alert resolves by the timer of its own
            keys.append(key)
            if state.expected is not None:
                frozen[key] = state.expected
        moment = moment_for(rule, work.clock, work.rules.setdefault(rule.name, RuleState(rule.name)))
        for finding in evaluate(rule, buckets, moment, keys, frozen):
            self._decide(finding, work)

    def _decide(self, finding: Finding, work: Pass) -> None:
        rule = finding.rule
        print_key = fingerprint(rule.name, finding.group)
        state = work.alerts.get(print_key) or AlertState(print_key, rule.name, dict(finding.group))
        if not finding.holds and state.status != FIRING:
            return
        timing = Timing(self.rules.repeat_interval(rule), self.rules.resolve_after(rule))
        for _ in range(RETRIES):
            trial = state.copy()
            decision = step(trial, finding.holds, work.clock, timing, finding.expected)
            if decision is None and trial.to_data() == state.to_data():
                return
            alert = self._render(finding, decision, trial, work.clock) if decision else None
            if alert is not None:
                enqueue(trial, alert, work.clock)
            if self.store.save_alert(trial):
                work.alerts[print_key] = trial
                if alert is not None:
                    work.decided.append(alert)
                return
            state = self.store.load_alert(print_key) or AlertState(print_key, rule.name, dict(finding.group))
        raise StateConflict(f"alert {print_key} kept changing")

    def _render(self, finding: Finding, decision: str, state: AlertState, at: float) -> Alert:
        rule = finding.rule
        return render(
            finding,
            decision,
            at,
            starts_at=state.starts_at or at,
            receivers=receivers(self.rules, rule, finding.group, self.destinations),
            silenced=silenced(self.rules, rule, finding.group, at),
            public_url=self.public_url,
        )

    def _flush(self, work: Pass, final: bool) -> None:
        """Hand over the decisions that waited the group wait: one notification per receiver."""
        waiting = [s for s in work.alerts.values() if s.outbox]
        if not due(waiting, work.clock, self.rules.defaults.group_wait, flush_all=final):
            return
        trials = []
        for state in waiting:
            trial = state.copy()
            trials.append((trial, take(trial)))
        if self.handoff is not None:
            # Outbox first: a crash after this line resends (receivers dedupe); before it, nothing was taken.
            self.handoff(notifications([a for _, alerts in trials for a in alerts], work.clock))
        for trial, _ in trials:
            if self.store.save_alert(trial):
                work.alerts[trial.fingerprint] = trial
            else:
                # Another instance took them (or changed the alert): go on from what is stored now, so later
                # steps of this pass do not hand the same decisions over again.
                stored = self.store.load_alert(trial.fingerprint)
                if stored is not None:
                    work.alerts[trial.fingerprint] = stored

    def _prune(self, clock: float) -> None:
        if self._pruned_at is not None and clock - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = clock
        keep = self.rules.span_seconds() + 2 * self.rules.defaults.allowed_lateness + 3600.0
        self.store.prune(minute_of(clock - keep))
