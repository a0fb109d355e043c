"""The enforcement guardrail: watches token protection policy changes and says what each switch did.

The shell around the pure parts (prediction.py, watch.py, explanation.py), run as a pipeline observer before
detection. Per batch it loads its state once, keeps the batch's policy changes (once each), counts what each
token protection policy judged into its hourly row, opens a watch for a change that starts enforcing (a switch
to On, or a widening), counts each live watch's blocks, and judges the watches at the batch's event clock: a
page when blocks are well beyond the prediction (naming the change, its author, the likely cause and the way
back), "as predicted" when the watch ends without that, and a resolved message when a page's cause is gone.
Every write is conditional; the instance whose write wins emits the decision, as detection does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from shared.core.alert import Alert, Notification, fingerprint
from shared.core.policy_change import PolicyChange, policy_key
from shared.core.request import Request
from shared.core.status_code import describe as describe_code
from shared.core.timestamp import iso
from shared.ingest.pipeline import Batch

from .content import links
from .explanation import describe, explain
from .guardrail_store import GuardrailState, GuardrailStore
from .kinds.base import span_text
from .policy_lint import display_name, lint_alert, proofs
from .prediction import HOUR, KEEP_HOURS, PolicyHours, Seen, operations, predict, seen_in
from .rules import Guardrail as Settings
from .state import StateConflict
from .watch import (
    PAGED,
    PREDICTED,
    QUIET,
    RESOLVED,
    Judgement,
    Limits,
    Watch,
    cause_text,
    crossed,
    excess,
    judge,
    rolled_back,
    way_back,
)

RULE = "token-protection-switch"
RETRIES = 8
PAGERDUTY = "pagerduty"
KEEP_CHANGES = 8 * 86400.0  # changes loaded for explanations and the readiness page
Operation = tuple[Any, ...]


class Guardrail:
    """Pipeline observer: returns its decisions as alert lines and hands their notifications to `handoff`."""

    def __init__(
        self,
        settings: Settings,
        store: GuardrailStore,
        destinations: Sequence[str] = (),
        public_url: str | None = None,
        handoff: Callable[[list[Notification]], object] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.destinations = list(destinations)
        self.public_url = public_url
        self.handoff = handoff
        self.limits = Limits(settings.min_blocked, settings.factor, settings.chance)
        self.changes: list[PolicyChange] = []  # the recent changes, as of the last batch (for explanations)

    def explain(self, at: float) -> str:
        """What an alert that began at `at` follows, if a token protection policy changed shortly before."""
        if not self.settings.enabled:
            return ""
        return explain(self.changes, at, self.settings.explain_within)

    def observe(self, batch: Batch) -> list[dict[str, Any]]:
        clock = batch.clock
        if clock is None or not self.settings.enabled:
            return []
        state = self.store.load(clock - KEEP_CHANGES)
        self._keep_changes(batch.changes, state)
        self.changes = state.changes
        seen = seen_in(batch.requests, batch.updates)
        decided: list[Alert] = []
        self._count(batch, seen, state, decided)
        for watch in [w for w in state.watches.values() if w.live]:
            self._step(watch, _for_watch(watch, seen), batch, decided)
        return [alert.line() for alert in decided]

    # --- changes and watches opened ---

    def _keep_changes(self, changes: Sequence[PolicyChange], state: GuardrailState) -> None:
        for change in sorted(changes, key=lambda c: (c.at, c.id)):
            if self.store.add_change(change):
                state.changes.append(change)
            if change.opens_watch and change.id not in state.watches:
                state.watches[change.id] = self._open(change, state)

    def _open(self, change: PolicyChange, state: GuardrailState) -> Watch:
        """The watch of a change, opened once: a second instance (or a redelivery) finds the first one's."""
        key = policy_key(change.policy)
        history = state.policies.get(key) or state.policies.get(policy_key(change.renamed_from or change.policy))
        prediction = predict(history, change.at, int(self.settings.lookback // HOUR))
        watch = Watch(change, key, prediction, change.at + self.settings.watch)
        if self.store.save_watch(watch):
            return watch
        found = self.store.load_watch(change.id)
        if found is None:
            raise StateConflict(f"watch {change.id} could be neither written nor read")
        return found

    # --- counting ---

    def _count(self, batch: Batch, seen: list[Seen], state: GuardrailState, decided: list[Alert]) -> None:
        """Each policy's row takes the batch's counts, and a flag for each trap the batch first proves of it."""
        counted = operations(seen)
        traps = proofs(batch.requests)
        for key in sorted(counted.keys() | traps.keys()):
            hours = state.policies.get(key) or PolicyHours(key, key)
            updates = [*counted.get(key, []), ("prune", int((batch.clock or 0.0) // HOUR) - KEEP_HOURS)]
            flags = {kind: self._lint(key, kind, proof) for kind, proof in traps.get(key, {}).items()}
            updates += [("flag", kind, alert.at) for kind, alert in sorted(flags.items())]
            state.policies[key], told = self._save_policy(hours, updates, batch.key, flags)
            decided += told

    def _save_policy(
        self, hours: PolicyHours, updates: list[Operation], batch: str | None, flags: dict[str, Alert]
    ) -> tuple[PolicyHours, list[Alert]]:
        """Write one policy's updates (in place: a lost write is re-read, so nothing stale is kept); the traps this
        write flags first are handed over before it, so a flag is never recorded untold."""
        for _ in range(RETRIES):
            if hours.took(batch):
                return hours, []  # a redelivery: this batch is counted already
            told = []
            for operation in ([("batch", batch)] if batch else []) + updates:
                if hours.apply(operation) and operation[0] == "flag":
                    told.append(flags[operation[1]])
            self._tell(told)
            if self.store.save_policy(hours):
                return hours, told
            hours = self.store.load_policy(hours.key) or PolicyHours(hours.key, hours.name)
        raise StateConflict(f"the counts of policy {hours.name!r} kept changing")

    def _lint(self, key: str, kind: str, proof: list[Request]) -> Alert:
        alert = lint_alert(display_name(key, proof), kind, proof, links(self.public_url))
        alert.receivers = self._receivers(self.settings.info_receivers, page=False)
        return alert

    def _tell(self, alerts: list[Alert]) -> None:
        """Informational messages (a trap flagged): one notification per destination, the same from any instance
        that makes it from the same batch."""
        notes = [Notification(r, [a], a.at, severity="info") for a in alerts for r in a.receivers]
        if notes and self.handoff is not None:
            self.handoff(notes)

    # --- judging ---

    def _step(self, watch: Watch, updates: list[Operation], batch: Batch, decided: list[Alert]) -> None:
        """Count the batch into one watch, judge it, hand over what it decided, and write it (conditionally)."""
        clock = batch.clock or watch.change.at
        for _ in range(RETRIES):
            trial = Watch.from_data(watch.to_data(), watch.etag)
            fresh = not (batch.key and batch.key in watch.batches)  # a redelivered batch is counted already
            changed = False
            if fresh:
                changed = bool(batch.key) and trial.apply(("batch", batch.key))
                changed = any([trial.apply(u) for u in updates]) or changed
            judgement = self._judgement(trial, batch.changes, clock)
            paged = trial.status == PAGED
            at, shown = self._moment(watch, trial, judgement, updates if fresh else [], clock)
            if judgement is not None:
                trial.apply(("status", judgement.status, at, judgement.cause))
                shown.apply(("status", judgement.status, at, judgement.cause))
            elif not changed:
                return
            alerts = self._alerts(shown, judgement, at, paged) if judgement else []
            notes = self._notifications(trial, judgement, alerts, at) if judgement else []
            if notes and self.handoff is not None:
                self.handoff(notes)  # the outbox first: ids are stable, so a lost race adds nothing twice
            if self.store.save_watch(trial):
                decided.extend(alerts)
                return
            watch = self.store.load_watch(watch.id) or watch
        raise StateConflict(f"watch {watch.id} kept changing")

    def _moment(
        self, before: Watch, trial: Watch, judgement: Judgement | None, updates: list[Operation], clock: float
    ) -> tuple[float, Watch]:
        """When a decision is dated, and the figures it shows: a page at the moment its evidence was complete."""
        if judgement is None or judgement.status != PAGED:
            return clock, trial
        found = crossed(before, updates, self.limits)
        if found is None:
            return max(clock, before.change.at), trial
        return max(found[0], before.change.at), found[1]

    def _judgement(self, watch: Watch, changes: Sequence[PolicyChange], clock: float) -> Judgement | None:
        for change in changes:
            if policy_key(change.policy) == watch.policy or policy_key(change.renamed_from) == watch.policy:
                ended = rolled_back(watch, change)
                if ended is not None:
                    return ended
        return judge(watch, clock, self.limits)

    # --- what is said ---

    def _alerts(self, watch: Watch, judgement: Judgement, clock: float, paged: bool) -> list[Alert]:
        """What a decision says: nothing for a watch that ends because its switch was undone before any page."""
        if judgement.status == PAGED:
            return [self._page(watch, clock)]
        if judgement.status == RESOLVED and paged:
            return [self._resolved(watch, judgement, clock)]
        if judgement.status in (PREDICTED, QUIET):
            return [self._as_predicted(watch)]
        return []

    def _base(self, watch: Watch, status: str, at: float) -> Alert:
        change = watch.change
        expected = watch.prediction.expected(watch.evaluated)
        return Alert(
            fingerprint=fingerprint(RULE, {"change": change.id}),
            rule=RULE,
            status="resolved" if status == RESOLVED else "firing",
            at=at,
            severity=self.settings.severity,
            enforcement="enforced",
            group={"policy": change.policy, "changed by": change.actor or "(not recorded)"},
            starts_at=watch.paged_at or at,
            kind="guardrail",
            current=float(watch.blocked),
            baseline=None if expected is None else round(expected, 2),
            window_seconds=max(0.0, at - change.at),
            signins=watch.evaluated,
            unbound=watch.blocked,
            top=_tops(watch),
            codes=_codes(watch),
            links=links(self.public_url),
            change=f"{describe(change)} at {iso(change.at)}",
        )

    def _page(self, watch: Watch, clock: float) -> Alert:
        alert = self._base(watch, PAGED, clock)
        alert.starts_at = clock
        alert.title = f"Token protection switch: '{watch.change.policy}' blocks far beyond its prediction"
        alert.summary = _measured(watch, clock, self.settings.lookback) + _cause(watch)
        alert.way_back = way_back(watch)
        alert.receivers = self._receivers(self.settings.page_receivers, page=True)
        return alert

    def _resolved(self, watch: Watch, judgement: Judgement, clock: float) -> Alert:
        alert = self._base(watch, RESOLVED, clock)
        alert.title = f"Token protection switch: '{watch.change.policy}' no longer blocks beyond its prediction"
        alert.summary = f"Resolved: {judgement.reason}. " + _measured(watch, clock, self.settings.lookback)
        alert.receivers = self._receivers(self.settings.page_receivers, page=True)
        return alert

    def _as_predicted(self, watch: Watch) -> Alert:
        alert = self._base(watch, PREDICTED, watch.ends)
        alert.severity = "info"
        name = watch.change.policy
        if watch.status == QUIET:
            alert.title = f"Token protection switch: '{name}' judged no sign-in in its first {span_text(_w(watch))}"
            alert.summary = (
                f"'{name}' was {watch.change.action}{_by(watch.change.actor)}, and in the "
                f"{span_text(_w(watch))} after it judged no sign-in: check that its users and apps are the ones "
                "intended."
            )
        else:
            alert.title = f"As predicted: '{name}' {watch.change.action}"
            alert.summary = _measured(watch, watch.ends, self.settings.lookback) + " That is within the prediction."
        alert.receivers = self._receivers(self.settings.info_receivers, page=False)
        return alert

    def _receivers(self, chosen: tuple[str, ...] | None, page: bool) -> list[str]:
        if chosen is not None:
            return [d for d in chosen if d in self.destinations]
        return [d for d in self.destinations if page or d != PAGERDUTY]

    def _notifications(
        self, watch: Watch, judgement: Judgement, alerts: list[Alert], clock: float
    ) -> list[Notification]:
        """A page opens an incident of its own (PagerDuty's dedup key) and its end resolves it; "as predicted" is
        one informational message, made the same by every instance (its time is the watch's end)."""
        if not alerts:
            return []
        alert = alerts[0]
        incident = "tp-" + hashlib.sha256(watch.id.encode()).hexdigest()[:24]
        if judgement.status in (PREDICTED, QUIET):
            return [Notification(r, [alert], watch.ends, severity="info") for r in alert.receivers]
        reason = "resolved" if judgement.status == RESOLVED else "opened"
        alert.incident = incident
        return [
            Notification(
                r,
                [alert],
                clock,
                incident=incident,
                reason=reason,  # type: ignore[arg-type]
                severity=self.settings.severity,
                opened_at=watch.paged_at or clock,
                sequence=1 if reason == "resolved" else 0,
            )
            for r in alert.receivers
        ]


def _for_watch(watch: Watch, seen: list[Seen]) -> list[Operation]:
    return [("count", s) for s in seen if policy_key(s.policy) == watch.policy and s.at >= watch.change.at]


def _w(watch: Watch) -> float:
    return watch.ends - watch.change.at


def _by(actor: str) -> str:
    return f" by {actor}" if actor else ""


def _measured(watch: Watch, at: float, lookback: float) -> str:
    """What the policy blocked since the change, against what report-only predicted."""
    change, prediction = watch.change, watch.prediction
    minutes = max(1, int((at - change.at) // 60))
    head = (
        f"'{change.policy}' was {change.action}{_by(change.actor)} at {iso(change.at)}. In the {minutes} min "
        f"since, it blocked {watch.blocked:,} of the {watch.evaluated:,} sign-ins it judged"
    )
    expected = prediction.expected(watch.evaluated)
    if expected is None:
        return head + f"; report-only gave no prediction (it judged no sign-in in the {span_text(lookback)} before)."
    share = prediction.share or 0.0
    return head + (
        f"; report-only predicted {expected:,.1f} ({share:.1%} of the {prediction.evaluated:,} sign-ins it judged "
        f"in the {span_text(lookback)} before)."
    )


def _cause(watch: Watch) -> str:
    if not watch.cause:
        return ""
    expected = watch.prediction.expected(watch.evaluated, watch.cause)
    predicted = "no prediction" if expected is None else f"{expected:,.1f} predicted"
    blocked = watch.causes.get(watch.cause, 0)
    return f" Likely cause: {cause_text(watch.cause)} ({blocked:,} blocked, {predicted})."


def _tops(watch: Watch) -> dict[str, list[tuple[str, int]]]:
    """Blocks by app, platform and code, most beyond the prediction first."""
    found: dict[str, list[tuple[str, int]]] = {}
    for prefix, name in (("app", "apps"), ("platform", "platforms"), ("code", "codes")):
        causes = [c for c in watch.causes if c.startswith(prefix + ":")]
        causes.sort(key=lambda c: (-excess(watch, c), c))
        found[name] = [(c.partition(":")[2], watch.causes[c]) for c in causes[:10]]
    return found


def _codes(watch: Watch) -> list[dict[str, Any]]:
    entries = []
    for value, _ in _tops(watch)["codes"][:5]:
        number = int(value) if value.isdigit() else None
        entry = describe_code(number)
        entries.append({"code": number, "meaning": entry.meaning, "fix": entry.fix})
    return entries
