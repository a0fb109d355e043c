"""Evaluation: the groups of one rule judged at one event time, by the rule's kind.

Pure: the window counts and the time are arguments. What a minute costs follows the groups that could fire and
those that fire, not every group seen: a rule's window counts move forward minute by minute (`Groups`), the
groups below what the kind could ever fire at are not judged (`Kind.floor`), the counts before the window are
looked up for the groups judged only, and a rule's memory is read in place (`MemoryView`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .grouping import alert_group, alert_key, any_code_key, is_any_code
from .kinds import Finding, Moment, kind_of
from .memory import GroupMemory, RuleState, shard_of
from .rules import Rule
from .window import USER_SKETCH, Buckets, Counts, Span, baseline_span, current_span, detailed, merge_sketch, sums_of


def evaluate(
    rule: Rule,
    buckets: Buckets,
    moment: Moment,
    keys: Iterable[str] = (),
    frozen: Mapping[str, float] | None = None,
    *,
    groups: Groups | None = None,
    every: bool = True,
) -> list[Finding]:
    """Judge the groups in the current window plus `keys` (groups with live alerts), at `moment.clock`.

    `frozen`: what each firing alert started against (kinds that compare use it), so a spike that lasts keeps
    firing when its own counts have raised the baseline. Every group with traffic in the window is a test made
    (`moment.tested`), which kinds that judge probabilities correct for. `groups`: the rule's window counts kept
    from the previous minute (moved forward here, not re-summed). `every=False`: judge only the groups whose
    counts reach the kind's floor, and `keys`; the others cannot hold, so leaving them out changes no decision.
    """
    kind = kind_of(rule)
    window = groups if groups is not None else Groups(rule, buckets)
    window.move(moment.window)
    keys = list(keys)
    judged = sorted({*(window.alerts if every else window.hot), *keys})
    found_parts = {key: window.parts(key) for key in judged}
    lookback = kind.lookback(rule)
    if lookback:
        wanted = {part for found in found_parts.values() for part in found}
        wanted.update(k for key in keys for k in _parts_of(rule, key))
        wanted |= {scale for key in list(wanted) if (scale := any_code_key(rule, key)) is not None}
        span = baseline_span(moment.clock, rule.window, lookback)
        moment.before = sums_of(buckets, rule.name, span, wanted) if wanted else {}
    if frozen is not None:
        moment.frozen = frozen
    moment.current = window.current
    moment.tested = max(1, len(window.alerts))
    findings = []
    for key in judged:
        found = found_parts[key]
        counts = next(iter(found.values())) if len(found) == 1 else Counts()
        if len(found) > 1:
            for part in found.values():
                counts.merge(part)
        finding = Finding(rule, key, alert_group(rule, key), False, counts, 0.0, parts=found)
        finding.current = float(finding.counts.measure(rule.count))
        kind.judge(rule, finding, moment)
        findings.append(finding)
    return findings


def before(
    rule: Rule, buckets: Buckets, span: Span, current: Mapping[str, Counts], keys: Iterable[str] = ()
) -> dict[str, Counts]:
    """The counts before the window (judged and unbound: what exposure needs), of the groups that need them:
    those in the window and those with live alerts (and, grouping by code, the every-code groups they scale
    with); none when the window is empty."""
    wanted = {*current, *(k for key in keys for k in _parts_of(rule, key))}
    wanted |= {scale for key in list(wanted) if (scale := any_code_key(rule, key)) is not None}
    return sums_of(buckets, rule.name, span, wanted) if wanted else {}


def _parts_of(rule: Rule, key: str) -> list[str]:
    """The counted groups an alert key may stand for: itself, unless the rule combines (then its parts are in
    the window already, or have nothing before worth judging against either)."""
    return [] if rule.combine else [key]


def with_detail(finding: Finding, buckets: Buckets, moment: Moment) -> Finding:
    """Fill in the top lists and examples of a finding that is decided (judging did without them)."""
    parts = finding.parts or {finding.key: finding.counts}
    detail = detailed(buckets, finding.rule.name, moment.window, parts)
    finding.counts = detail
    return finding


def moment_for(rule: Rule, clock: float, state: RuleState, memory: Mapping[str, list[float]] | None = None) -> Moment:
    return Moment(clock, current_span(clock, rule.window), state, memory=memory or {})


class Groups:
    """One rule's counted groups in its current window, kept as the window moves forward through fixed buckets
    (one batch's): each minute adds the bucket that enters and takes away the one that leaves, instead of summing
    the window again. Judged and unbound sign-ins add up and take away; people (sketches) do not, so they are
    merged only for the groups asked for (`counts`).

    It also keeps, per alert (`alert_key`: a rule that combines judges several counted groups as one), the
    unbound sign-ins of its parts, and which alerts reach `least`, the fewest unbound sign-ins at which the
    kind could find the alert's condition to hold (`hot`): an alert's people are never more than its unbound
    sign-ins while there are fewer than a sketch holds.
    """

    __slots__ = (
        "_alert_of",
        "_counts",
        "alerts",
        "buckets",
        "current",
        "hot",
        "least",
        "order",
        "rule",
        "span",
        "sums",
    )

    KNOWN = 65_536  # counted groups whose alert is remembered from batch to batch (`known`)

    def __init__(self, rule: Rule, buckets: Buckets, known: dict[str, str | None] | None = None) -> None:
        self.rule = rule
        self.buckets = buckets
        floor = kind_of(rule).floor(rule)
        self.least = min(floor, float(USER_SKETCH)) if rule.count == "users" else floor
        self.span: Span | None = None
        self.sums: dict[str, list[int]] = {}  # counted group -> [judged, unbound, buckets of the span holding it]
        self.order: dict[int, dict[str, tuple[int, int, int]]] = {}  # minute -> group -> (place, judged, unbound)
        self.alerts: dict[str, list[Any]] = {}  # alert key -> [unbound sign-ins of its parts, {part: None}]
        self.hot: set[str] = set()
        self.current: Mapping[str, Counts] = _Current(self)
        self._counts: dict[str, Counts] = {}  # this span's full counts, as asked for
        # counted group -> its alert (None: an every-code group), handed on from the previous batch's Groups
        self._alert_of: dict[str, str | None] = known if known is not None and len(known) < self.KNOWN else {}

    def move(self, span: Span) -> None:
        """To the window `span`: forward from the one it holds, or summed afresh (the first minute, a jump back)."""
        held = self.span
        if held is None or span.first < held.first or span.last < held.last or span.first > held.last:
            self.sums, self.order, self.alerts, self.hot = {}, {}, {}, set()
            for minute in span.minutes():
                self._add(minute)
        else:
            for minute in range(held.first, span.first):
                self._remove(minute)
            for minute in range(held.last + 1, span.last + 1):
                self._add(minute)
        self.span = span
        self._counts = {}

    @property
    def known(self) -> dict[str, str | None]:
        return self._alert_of

    def _alert(self, key: str) -> str | None:
        try:
            return self._alert_of[key]
        except KeyError:
            found = self._alert_of[key] = None if is_any_code(self.rule, key) else alert_key(self.rule, key)
            return found

    def _add(self, minute: int) -> None:
        groups = self.buckets.get(minute, {}).get(self.rule.name)
        if not groups:
            return
        placed = self.order[minute] = {}
        all_sums, alerts, known, hot, least = self.sums, self.alerts, self._alert_of, self.hot, self.least
        for place, (key, counts) in enumerate(groups.items()):
            judged, unbound = counts.judged, counts.unbound
            placed[key] = (place, judged, unbound)
            sums = all_sums.get(key)
            if sums is None:
                all_sums[key] = [judged, unbound, 1]
            else:
                sums[0] += judged
                sums[1] += unbound
                sums[2] += 1
            alert = known[key] if key in known else self._alert(key)
            if alert is None:
                continue
            entry = alerts.get(alert)
            if entry is None:
                entry = alerts[alert] = [0, {}]
            entry[1][key] = None
            entry[0] += unbound
            if entry[0] >= least:
                hot.add(alert)

    def _remove(self, minute: int) -> None:
        for key, (_, judged, unbound) in self.order.pop(minute, {}).items():
            sums = self.sums[key]
            sums[0] -= judged
            sums[1] -= unbound
            sums[2] -= 1
            if not sums[2]:
                del self.sums[key]
            alert = self._alert(key)
            if alert is None:
                continue
            entry = self.alerts[alert]
            entry[0] -= unbound
            if not sums[2]:
                del entry[1][key]
                if not entry[1]:
                    del self.alerts[alert]
                    self.hot.discard(alert)
                    continue
            if entry[0] < self.least:
                self.hot.discard(alert)

    def counts(self, key: str) -> Counts:
        """A counted group's window counts with its people (the sketches of its buckets merged in minute order)."""
        found = self._counts.get(key)
        if found is None:
            judged, unbound, _ = self.sums[key]
            found = self._counts[key] = Counts(judged, unbound)
            for minute in self.span.minutes() if self.span is not None else ():
                held = self.order.get(minute)
                if held is not None and key in held:
                    found.users = merge_sketch(found.users, self.buckets[minute][self.rule.name][key].users)
        return found

    def parts(self, alert: str) -> dict[str, Counts]:
        """An alert's counted groups in the window, in the order a sum over the window's buckets meets them."""
        entry = self.alerts.get(alert)
        if entry is None:
            return {}
        return {key: self.counts(key) for key in sorted(entry[1], key=self._first_seen)}

    def _first_seen(self, key: str) -> tuple[int, int]:
        for minute in self.span.minutes() if self.span is not None else ():
            held = self.order.get(minute)
            if held is not None and key in held:
                return minute, held[key][0]
        return 0, 0


class _Current(Mapping[str, Counts]):
    """Every counted group in a rule's window, its counts (with people) made when asked for."""

    __slots__ = ("_groups",)

    def __init__(self, groups: Groups) -> None:
        self._groups = groups

    def __getitem__(self, key: str) -> Counts:
        if key not in self._groups.sums:
            raise KeyError(key)
        return self._groups.counts(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._groups.sums)

    def __len__(self) -> int:
        return len(self._groups.sums)


class MemoryView(Mapping[str, list[float]]):
    """One rule's memory across its shards, read in place: each group is looked up in its own shard, so nothing
    is copied however many groups the rule remembers, and what changes is seen at once."""

    __slots__ = ("_rule", "_shards")

    def __init__(self, shards: Mapping[tuple[str, int], GroupMemory], rule: str) -> None:
        self._shards = shards
        self._rule = rule

    def __getitem__(self, key: str) -> list[float]:
        shard = self._shards.get((self._rule, shard_of(key)))
        if shard is None:
            raise KeyError(key)
        return shard.entries[key]

    def __iter__(self) -> Iterator[str]:
        for (name, _), shard in list(self._shards.items()):
            if name == self._rule:
                yield from shard.entries

    def __len__(self) -> int:
        return sum(len(shard.entries) for (name, _), shard in self._shards.items() if name == self._rule)
