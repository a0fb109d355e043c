"""The detection observer: counts each batch into windows, evaluates the rules, runs alerts and incidents.

The shell around the pure parts (window.py, grouping.py, kinds/, lifecycle.py, incident.py): per batch it
loads the shared state once, aggregates the batch's sign-ins in memory, merges them into the stored buckets
with one conditional write per bucket row, then at each minute the event clock crosses: lets learning rules
learn from the window that just finished, evaluates every rule, writes an alert state only when a decision is
made (conditionally: the instance whose write wins emits the decision, so a second instance or a restart
neither repeats nor loses one), puts alerts that start firing into incidents, and hands each destination what
it must be told of them. A batch without records (the timer's tick) evaluates too, which resolves alerts whose
traffic stopped. What would outgrow its bounds degrades and is counted (`Degraded`), never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.core.alert import Alert, Notification, fingerprint
from shared.ingest.pipeline import Batch
from shared.ingest.store import Update

from .content import render, title
from .evaluation import Groups, MemoryView, before, evaluate, moment_for, with_detail
from .grouping import NONE_VALUE, Dimensions, Grouper, alert_dimensions, describe_signin, group_key
from .incident import IncidentState, Member, Plan, find, incident_id, leaning_of, notification, plan, scope_of
from .kinds import Finding, Moment, kind_of
from .kinds.unusual import window_minutes
from .lifecycle import FIRING, RESOLVED, AlertState, Timing, step
from .memory import GroupMemory, RuleState, shard_of
from .routing import inhibited, labels, receivers, silenced
from .rules import Rule, RulesFile
from .silence import RuntimeSilence, muted_by
from .state import Degraded, DetectionState, DetectionStore, StateConflict
from .window import Buckets, Counts, Span, Tally, baseline_span, is_late, minute_of, steps, total

log = logging.getLogger("bindwatch.detection")
_RANKS = {"info": 0, "warning": 1, "error": 2, "critical": 3}


def _rank(severity: str | None) -> int:
    return _RANKS.get(severity or "", -1)


RETRIES = 8
PRUNE_EVERY = 3600.0  # event seconds between clean-ups of old window buckets
MAX_CATCHUP = 6 * 3600.0  # a clock that jumps further is evaluated from this far back only
MAX_FIRING = 100  # alerts one rule may have firing at once; more groups holding are counted, not alerted
Operation = tuple[Any, ...]


@dataclass(slots=True)
class Pass:
    """One batch's work in progress: the state it started from, as updated, and the updates to write."""

    clock: float  # the event time being evaluated
    final: bool
    state: DetectionState
    loaded: int = 0  # the first minute whose buckets were read
    rule_updates: dict[str, list[Operation]] = field(default_factory=dict)
    memory_updates: dict[tuple[str, int], list[Operation]] = field(default_factory=dict)
    incident_updates: dict[str, list[Operation]] = field(default_factory=dict)
    views: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # rule -> its memory, all shards
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
        *,
        silences: Callable[[], Sequence[RuntimeSilence]] | None = None,
        explain: Callable[[float], str] | None = None,
    ) -> None:
        self.rules = rules
        self.handoff = handoff  # the durable outbox write, done before incidents record them as told
        self.grouper = Grouper()
        self.store = store
        self.destinations = list(destinations)
        self.public_url = public_url
        # Sign-ins that came more than the allowed lateness behind where evaluation picked up: judged and stored,
        # but counted in no window. `late` counts the unbound ones (what an alert could have missed), each once;
        # `late_judged` the sign-ins missing from the judged counts (what `unusual` rules scale with).
        self.late = 0
        self.late_judged = 0
        self.degraded = getattr(store, "degraded", None) or Degraded()
        self._by_name = {r.name: r for r in rules.active_rules}
        self._pruned_at: float | None = None
        self._silences = silences  # the run-time silences active now (the shell reads them, at most each minute)
        self._live: Sequence[RuntimeSilence] = ()
        self._explain = explain  # the token protection policy change an alert began shortly after (the guardrail)
        # Each rule's window counts through the batch being evaluated (evaluation.Groups), and the groups it knew.
        self._windows: dict[str, tuple[Pass, Groups]] = {}
        self._through: float | None = None  # the event clock this instance last evaluated at

    def observe(self, batch: Batch) -> list[dict[str, Any]]:
        clock = batch.clock
        if clock is None or not self.rules.active_rules:
            return []
        start = self._start(batch, clock)
        self._live = self._silences() if self._silences else ()
        work = Pass(start, batch.final, self.store.load_states())
        self._migrate(work)
        self._retire_orphans(work)
        tally = self._count(batch.updates, work, start)
        work.loaded = minute_of(start - self.rules.span_seconds()) - 1
        buckets = self.store.merge_buckets(tally.buckets, work.loaded, minute_of(clock), batch.key)
        for at in steps(start, clock):
            work.clock = at
            for rule in self.rules.active_rules:
                self._learn(rule, buckets, work)
                self._evaluate(rule, buckets, work)
            self._release(work)
            self._flush(work, final=batch.final and at == clock)
        self._save_incidents(work)  # after every hand-over of the batch: the outbox has them first
        self._save_memory(work)
        self._through = clock if self._through is None else max(self._through, clock)
        self._prune(clock)  # every batch, at most hourly: an endless stream (replay -) has no quiet batches
        return [a.line() for a in work.decided]

    def _start(self, batch: Batch, clock: float) -> float:
        """Where evaluation picks up: the clock before this batch, else the earliest record in it; never more than
        MAX_CATCHUP behind the clock. Lateness is measured from here: what is older lands in no window still to
        be evaluated, whichever order (or batch) brought it."""
        known = [c for c in (batch.previous_clock, self._through) if c is not None]
        start = max(known) if known else min((u.first_at for u in batch.updates), default=clock)
        return min(clock, max(start, clock - MAX_CATCHUP))

    # --- counting ---

    def _count(self, updates: Sequence[Update], work: Pass, start: float) -> Tally:
        """Aggregate the batch in memory. A sign-in more than the allowed lateness before `start` is late: counted
        in no window and not in a rule's warm-up either (months-old history must not make a rule look warmed up)."""
        tally = Tally()
        lateness = self.rules.defaults.allowed_lateness
        created: list[float] = []
        for update in updates:
            if update.created:
                if is_late(update.first_at, start, lateness):
                    self.late_judged += 1
                else:
                    created.append(update.first_at)
                    self._count_judged(update, tally)
            if update.became_unbound and update.unbound_at is not None:
                if is_late(update.unbound_at, start, lateness):
                    tally.late += 1
                else:
                    self._count_unbound(update, update.unbound_at, tally, work)
        if created:
            for rule in self.rules.active_rules:  # only the earliest counted traffic matters to a rule's warm-up
                self._rule_update(work, rule.name, ("start", min(created)))
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
                    self._memory_update(work, rule.name, key, memory)

    # --- memory ---

    def _rule_update(self, work: Pass, name: str, operation: Operation) -> None:
        state = work.state.rules.setdefault(name, RuleState(name))
        if state.apply(operation):
            work.rule_updates.setdefault(name, []).append(operation)

    def _memory_update(self, work: Pass, rule: str, key: str, operation: Operation) -> None:
        where = (rule, shard_of(key))
        shard = work.state.memory.get(where)
        if shard is None:
            shard = work.state.memory[where] = GroupMemory(rule, where[1])
        if shard.apply(operation):
            work.memory_updates.setdefault(where, []).append(operation)
            work.views.pop(rule, None)

    def _view(self, work: Pass, rule: str) -> MemoryView:
        """One rule's memory across its shards, read in place (never copied: a rule may remember thousands)."""
        return MemoryView(work.state.memory, rule)

    def _migrate(self, work: Pass) -> None:
        """Episodes an older version kept in the rule's own row move to the shards (once)."""
        for name, state in list(work.state.rules.items()):
            for key, (first, last) in state.legacy.items():
                self._memory_update(work, name, key, ("episode", key, first, last))
            if state.legacy:
                self._rule_update(work, name, ("migrated",))

    def _retire_orphans(self, work: Pass) -> None:
        """Alerts of a rule the rules file no longer has (renamed or removed by an upgrade or an edit) can never be
        evaluated again: resolve them once, and tell their incident, rather than load them every batch forever."""
        for state in [s for s in work.state.alerts.values() if s.status == FIRING and s.rule not in self._by_name]:
            trial = state.copy()
            trial.status = RESOLVED
            if not self.store.save_alert(trial):
                continue  # another instance got there first
            del work.state.alerts[state.fingerprint]
            log.warning("alert %s of rule %r, no longer in the rules file, resolved", state.fingerprint, state.rule)
            alert = Alert(state.fingerprint, state.rule, "resolved", work.clock, group=dict(state.group))
            alert.severity = state.severity or "warning"  # type: ignore[assignment]
            work.decided.append(alert)
            self._tell_incident(trial, alert, None, work)

    def _save_memory(self, work: Pass) -> None:
        """Changed rule rows and memory shards (pruned by each rule's lookback and capped) in one conditional write
        where the store can; whatever lost a race is re-read and its updates replayed."""
        shards: dict[tuple[str, int], GroupMemory] = {}
        for (name, shard), operations in work.memory_updates.items():
            rule = self._by_name.get(name)
            memory = work.state.memory[name, shard]
            if rule is not None:
                kind = kind_of(rule)
                bounds = [op for op in (kind.forget(rule, work.clock), ("cap", kind.recency)) if op is not None]
                for operation in bounds:
                    memory.apply(operation)
                operations.extend(bounds)
            shards[name, shard] = memory
        rules = {name: work.state.rules[name] for name in work.rule_updates}
        for _ in range(RETRIES):
            if not shards and not rules:
                return
            lost = self.store.save_memory(list(shards.values()), list(rules.values()))
            for memory in shards.values():
                self.degraded.note("rule_memory", memory.evicted, rule=memory.rule, shard=memory.shard)
                memory.evicted = 0
            shards, rules = {}, {}
            for item in lost:
                if isinstance(item, RuleState):
                    rules[item.name] = work.state.rules[item.name] = self._reloaded_rule(item.name, work)
                else:
                    where = (item.rule, item.shard)
                    shards[where] = work.state.memory[where] = self._reloaded_shard(where, work)
        if shards or rules:
            raise StateConflict("rule memory kept changing")

    def _reloaded_rule(self, name: str, work: Pass) -> RuleState:
        state = self.store.load_rule(name) or RuleState(name)
        for operation in work.rule_updates[name]:
            state.apply(operation)
        return state

    def _reloaded_shard(self, where: tuple[str, int], work: Pass) -> GroupMemory:
        memory = self.store.load_memory(*where) or GroupMemory(*where)
        for operation in work.memory_updates[where]:
            memory.apply(operation)
        return memory

    # --- learning, evaluation and the alert lifecycle ---

    def _learn(self, rule: Rule, buckets: Buckets, work: Pass) -> None:
        """Learning kinds fold each window once it is final (the allowed lateness after its end), exactly once."""
        kind = kind_of(rule)
        if not kind.learns:
            return
        state = work.state.rules.setdefault(rule.name, RuleState(rule.name))
        size = window_minutes(rule)
        final = minute_of(work.clock - self.rules.defaults.allowed_lateness) // size - 1
        first = final if state.learnt is None else state.learnt + 1
        first = max(first, -(-work.loaded // size))  # older windows were not read: skipped, not guessed
        for window in range(first, final + 1):
            span = Span(window * size, (window + 1) * size - 1)
            moment = Moment((span.last + 1) * 60.0 - 1, span, state, memory=self._view(work, rule.name))
            totals = total(buckets, rule.name, span, detail=False)
            earlier = baseline_span(moment.clock, rule.window, kind.lookback(rule))
            moment.before = before(rule, buckets, earlier, totals)
            groups, own = kind.lessons(rule, window, totals, moment)
            for operation in groups:
                self._memory_update(work, rule.name, operation[1], operation)
            for operation in own:
                self._rule_update(work, rule.name, operation)

    def _evaluate(self, rule: Rule, buckets: Buckets, work: Pass) -> None:
        live = {s.fingerprint: s for s in work.state.alerts.values() if s.rule == rule.name and s.status == FIRING}
        keys, frozen = [], {}
        for state in live.values():
            try:
                key = group_key(state.group[d] for d in alert_dimensions(rule))
            except KeyError:
                continue  # the rule's group_by changed; the old alert resolves by the timer of its own
            keys.append(key)
            if state.expected is not None:
                frozen[key] = state.expected
        state = work.state.rules.setdefault(rule.name, RuleState(rule.name))
        moment = moment_for(rule, work.clock, state, self._view(work, rule.name))
        firing = len(live)
        groups = self._groups(rule, buckets, work)
        for finding in evaluate(rule, buckets, moment, keys, frozen, groups=groups, every=False):
            if self._kept_by_newer(finding):
                continue
            if finding.holds and finding.key not in frozen and firing >= MAX_FIRING:
                self.degraded.note("alerts", 1, rule=rule.name, limit=MAX_FIRING)
                continue
            if self._decide(finding, work, lambda f=finding: with_detail(f, buckets, moment)) and finding.holds:
                firing += 1

    def _groups(self, rule: Rule, buckets: Buckets, work: Pass) -> Groups:
        """The rule's window counts through this batch, moved forward minute by minute rather than summed again
        (kept until the next batch: its buckets are new)."""
        held = self._windows
        found = held.get(rule.name)
        if found is None or found[0] is not work or found[1].buckets is not buckets:
            known = found[1].known if found is not None else None
            found = held[rule.name] = (work, Groups(rule, buckets, known))
        return found[1]

    def _kept_by_newer(self, finding: Finding) -> bool:
        """A newer release (mid-deployment) keeps this alert's row: deciding it here could decide it twice."""
        newer = getattr(self.store, "newer", None)
        return bool(newer) and "a:" + fingerprint(finding.rule.name, finding.group) in newer

    def _decide(self, finding: Finding, work: Pass, detail: Callable[[], object] = lambda: None) -> bool:
        """Run one group's lifecycle step (`detail` fills in what an alert shows); True when an episode started."""
        rule = finding.rule
        print_key = fingerprint(rule.name, finding.group)
        state = work.state.alerts.get(print_key) or AlertState(print_key, rule.name, dict(finding.group))
        if not finding.holds and state.status != FIRING:
            return False
        timing = Timing(self.rules.repeat_interval(rule), self.rules.resolve_after(rule))
        severity = finding.severity or rule.severity_of(finding.group)
        for _ in range(RETRIES):
            trial = state.copy()
            decision = step(trial, finding.holds, work.clock, timing, finding.frozen)
            if decision is None and finding.holds and _rank(severity) > _rank(trial.severity):
                decision, trial.fired_at = FIRING, work.clock  # escalated while firing: decided (and told) again
            if decision == FIRING:
                trial.severity = severity if _rank(severity) > _rank(trial.severity) else trial.severity
            if decision is None and trial.to_data() == state.to_data():
                return False
            if decision:
                detail()
            alert = self._render(finding, decision, trial, work.clock) if decision else None
            started = decision == FIRING and state.status != FIRING
            member = self._membership(trial, alert, finding, work) if started and alert else None
            if alert is not None and not started:
                alert.incident = trial.incident or ""
            if self.store.save_alert(trial):
                work.state.alerts[print_key] = trial
                if alert is not None:
                    work.decided.append(alert)
                    self._tell_incident(trial, alert, member, work)
                return started
            state = self.store.load_alert(print_key) or AlertState(print_key, rule.name, dict(finding.group))
        raise StateConflict(f"alert {print_key} kept changing")

    def _render(self, finding: Finding, decision: str, state: AlertState, at: float) -> Alert:
        rule = finding.rule
        finding.severity = state.severity or finding.severity  # an alert never de-escalates while it fires
        severity = finding.severity
        alert = render(
            finding,
            decision,
            at,
            starts_at=state.starts_at or at,
            receivers=receivers(self.rules, rule, finding.group, self.destinations, severity),
            silenced=silenced(self.rules, rule, finding.group, at, severity, live=self._live),
            public_url=self.public_url,
        )
        alert.change = self._explain(alert.starts_at) if self._explain else ""
        return alert

    # --- incidents ---

    def _membership(
        self, trial: AlertState, alert: Alert, finding: Finding | None, work: Pass
    ) -> tuple[str, dict[str, Any]] | None:
        """Which incident an alert that starts firing joins (None when it is muted: a silence or an inhibit rule).
        An alert routed nowhere (replay without destinations) still names its incident; nobody is told."""
        rule = self._by_name[trial.rule]
        if not alert.silenced and self._inhibited(trial, work):
            alert.silenced = True
        trial.held = alert.silenced
        if alert.silenced:
            return None
        settings = self.rules.incidents
        counts = finding.counts if finding is not None else Counts()
        scope = scope_of(trial.group, counts, settings.correlate_by, settings.dominant_share)
        leaning = leaning_of(trial.group, counts, settings.correlate_by, settings.dominant_share / 2)
        joined = find(work.state.incidents.values(), scope, work.clock, leaning)
        trial.incident = alert.incident = joined.id if joined else incident_id(trial.fingerprint, work.clock)
        member = {
            "fingerprint": trial.fingerprint,
            "rule": rule.name,
            "severity": alert.severity,
            "status": "firing",
            "receivers": list(alert.receivers),
            "due_at": work.clock + self.rules.group_wait(rule, alert.severity),
            "scope": scope,
            "alert": alert.to_dict(),
            "own": [[d, v] for d, v in trial.group.items() if d in settings.correlate_by and v != NONE_VALUE],
        }
        return trial.incident, member

    def _inhibited(self, trial: AlertState, work: Pass) -> bool:
        if not self.rules.inhibit_rules:
            return False
        rule = self._by_name[trial.rule]
        firing = [
            labels(self._by_name[s.rule], s.group, s.severity)
            for s in work.state.alerts.values()
            if s.status == FIRING and s.fingerprint != trial.fingerprint and s.rule in self._by_name
        ]
        return inhibited(self.rules, labels(rule, trial.group, trial.severity), firing)

    def _tell_incident(
        self, trial: AlertState, alert: Alert, member: tuple[str, dict[str, Any]] | None, work: Pass
    ) -> None:
        if member is not None:
            self._incident_update(work, member[0], ("join", member[1]))
        elif trial.incident:
            update = ("update", trial.fingerprint, alert.status, alert.to_dict(), work.clock)
            self._incident_update(work, trial.incident, update)

    def _incident_update(self, work: Pass, incident: str, operation: Operation) -> None:
        state = work.state.incidents.get(incident)
        if state is None:
            state = self.store.load_incident(incident)
            if state is None and operation[0] != "join":
                return  # long gone (retention): nothing to tell
            state = state or IncidentState(incident, work.clock)
            work.state.incidents[incident] = state
        if state.apply(operation, self.rules.incidents.max_alerts):
            work.incident_updates.setdefault(incident, []).append(operation)

    def _release(self, work: Pass) -> None:
        """Alerts held back by a silence or an inhibit rule are notified once neither applies while they fire."""
        for state in [s for s in work.state.alerts.values() if s.held and s.status == FIRING]:
            rule = self._by_name.get(state.rule)
            if rule is None or self._inhibited(state, work):
                continue
            if silenced(self.rules, rule, state.group, work.clock, state.severity, live=self._live):
                continue
            trial = state.copy()
            alert = Alert(
                fingerprint=state.fingerprint,
                rule=rule.name,
                status="firing",
                at=work.clock,
                title=title(rule, state.group),
                severity=state.severity or rule.severity_of(state.group),  # type: ignore[arg-type]
                enforcement=state.group.get("enforcement") or rule.enforcement(),
                group=dict(state.group),
                starts_at=state.starts_at or work.clock,
                kind=rule.kind,
                receivers=receivers(self.rules, rule, state.group, self.destinations, state.severity),
                change=self._explain(state.starts_at or work.clock) if self._explain else "",
            )
            member = self._membership(trial, alert, None, work)
            if self.store.save_alert(trial):
                work.state.alerts[state.fingerprint] = trial
                self._tell_incident(trial, alert, member, work)

    def _flush(self, work: Pass, final: bool) -> None:
        """Hand over what each destination must be told now; the outbox has it before the incident records it."""
        repeat, wait = self.rules.defaults.repeat_interval, self.rules.defaults.group_wait
        for incident in list(work.state.incidents.values()):
            plans = plan(incident, work.clock, repeat, wait, flush_all=final)
            if self._live:  # on-call silenced it while it was open: no more repeats or escalations
                plans = [p for p in plans if p.reason == "resolved" or not self._muted_now(p, work)]
            if not plans:
                continue
            if self.handoff is not None:
                self.handoff([notification(incident, made, work.clock) for made in plans])
            for made in plans:
                told = ("told", made.receiver, made.reason, made.severity, work.clock)
                self._incident_update(work, incident.id, told)

    def _muted_now(self, made: Plan, work: Pass) -> bool:
        """Every firing alert the notification shows is muted by a run-time silence."""
        firing = [m for m in made.members if m.status == "firing"]
        return bool(firing) and all(self._live_mutes(m, work) for m in firing)

    def _live_mutes(self, member: Member, work: Pass) -> bool:
        state, rule = work.state.alerts.get(member.fingerprint), self._by_name.get(member.rule)
        if state is None or rule is None:
            return False
        return muted_by(self._live, labels(rule, state.group, member.severity)) is not None

    def _save_incidents(self, work: Pass) -> None:
        for incident, operations in work.incident_updates.items():
            state = work.state.incidents[incident]
            for _ in range(RETRIES):
                if self.store.save_incident(state):
                    break
                state = self.store.load_incident(incident) or IncidentState(incident, state.opened_at)
                for operation in operations:
                    state.apply(operation, self.rules.incidents.max_alerts)
            else:
                raise StateConflict(f"incident {incident} kept changing")
            if state.live:
                work.state.incidents[incident] = state
            else:
                del work.state.incidents[incident]
        work.incident_updates.clear()

    def _prune(self, clock: float) -> None:
        if self._pruned_at is not None and clock - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = clock
        keep = self.rules.span_seconds() + 2 * self.rules.defaults.allowed_lateness + 3600.0
        self.store.prune(minute_of(clock - keep))
