"""`unusual`: more people with unbound sign-ins than a group's usual rate makes plausible.

The expected count follows the day by construction: it is the group's learnt rate of
unbound people per healthy sign-in (judged and not unbound) times the healthy sign-ins
around now, so the 8x office-hours ramp raises the expectation with the traffic and a
quiet night lowers it, while a burst of unbound sign-ins does not raise its own
expectation (it would, were the rate per judged sign-in: an app whose usual share is
25 % could then never look more than 4 times usual). "Around now" is the larger of the
window's healthy sign-ins and the last half hour's, per window: a handful of sign-ins
is too noisy a yardstick on its own.

The rate is learnt from each finished window (decaying with the rule's `baseline` as
a half-life) and shrunk towards its parent's (the same app in the other enforcement
mode) and the population's (all groups of the rule): a group with little history
borrows strength from the wider population instead of having a zero baseline, and a
group with much history stands on its own.

The count is judged by its tail probability under a negative binomial (a Poisson
whose rate is itself uncertain: as uncertain as the evidence behind it, and never
surer than `DISPERSION` allows), corrected for the number of alerts it could raise at
that moment (Bonferroni), together with floors: at least `min_current` in the window
and at least `min_height` times the expected count.

A rule may judge some of its groups together (`combine = ["enforcement"]`): each
counted group (an app's report-only sign-ins, its enforced ones) keeps its own rate
and exposure, so moving people from report-only to enforced changes nothing; their
people are added up and one alert speaks for them, as severe as its most severe part
that is itself well above usual (enforced blocks of many people: critical).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.core.alert import SEVERITY_RANK

from ..grouping import any_code_key, is_any_code
from ..memory import decay
from ..probability import negbin_tail
from ..window import BUCKET_SECONDS, Counts, minute_of
from .base import Finding, Kind, Moment, span_text

if TYPE_CHECKING:
    from ..rules import Rule

DEFAULT_PROBABILITY = 1e-4
DEFAULT_MIN_HEIGHT = 3.0
DEFAULT_HALF_LIFE = 2 * 86400.0
DEFAULT_WARMUP = 1800.0
EXPOSURE_SPAN = 1800.0  # the half hour of healthy sign-ins the expectation also looks at
HETEROGENEITY = 1.0  # prior shape of a group's rate around the population's: apps differ by about their own size
CLOSENESS = 4.0  # prior shape around the parent's (the other enforcement mode of the same app): closer kin
DISPERSION = 20.0  # the surest the rate ever is: it varies about 22 % from window to window beyond chance
PRIOR = (0.5, 50.0)  # what is assumed before any traffic: 1 unbound user per 100 healthy sign-ins, weakly
HOLD = 100.0  # a firing alert holds while its count stays improbable at 100x the firing probability
FORGET_HALF_LIVES = 5.0  # a group unseen this long has under 4 % of its evidence left: it is forgotten
PARENT = "^"  # memory key prefix of a parent group
PART_PEOPLE = 2  # people a combined part needs to set the alert's severity (with the whole alert unusual)


@dataclass(frozen=True, slots=True)
class Expectation:
    """A group's rate of unbound people per healthy sign-in, and how sure it is (a Gamma shape)."""

    rate: float
    shape: float


@dataclass(frozen=True, slots=True)
class Part:
    """One counted group at one moment: what it measured, what was expected, how sure that is."""

    key: str
    measured: float
    exposure: float
    expected: float
    shape: float


class Unusual(Kind):
    name = "unusual"
    learns = True
    combines = True
    recency = 2  # a learnt rate is [unbound, judged, window]

    def check(self, rule: Rule) -> None:
        """A code group's expectation scales with the healthy sign-ins of every code (they have none), so codes
        can be grouped by, not filtered on."""
        for name, values in (("match", rule.match), ("exclude", rule.exclude)):
            if "status_code" in values:
                raise ValueError(f"field {name}: an unusual rule cannot filter on status_code (group by it)")

    def warmup(self, rule: Rule) -> float:
        return DEFAULT_WARMUP

    def lookback(self, rule: Rule) -> float:
        """The healthy sign-ins of the half hour before the window's end are part of the exposure."""
        return max(0.0, EXPOSURE_SPAN - rule.window)

    def forget(self, rule: Rule, clock: float) -> tuple[Any, ...] | None:
        windows = half_life_windows(rule) * FORGET_HALF_LIVES
        return ("forget", self.recency, window_index(rule, clock) - windows)

    def floor(self, rule: Rule) -> float:
        """It fires only with at least `min_current` in the window (an alert that fires is judged anyway)."""
        return float(rule.min_current)

    def judge(self, rule: Rule, finding: Finding, moment: Moment) -> None:
        if finding.current < rule.min_current and finding.key not in moment.frozen:
            finding.why = f"{finding.current:g} in {span_text(rule.window)}, fewer than {rule.min_current}"
            return  # cannot fire: judged in a line (most groups, most minutes)
        parts = finding.parts or ({finding.key: finding.counts} if finding.counts.judged or finding.current else {})
        judged = [part(rule, key, counts, moment) for key, counts in parts.items()]
        measured = finding.current
        exposure = sum(p.exposure for p in judged) or 1.0
        frozen = moment.frozen.get(finding.key)
        expected = sum(p.expected for p in judged) if frozen is None else frozen * exposure
        chance = min(1.0, negbin_tail(measured, expected, combined_shape(judged)) * max(1, moment.tested))
        probability = rule.probability or DEFAULT_PROBABILITY
        height = rule.min_height or DEFAULT_MIN_HEIGHT
        started = moment.state.started
        warmed = started is not None and moment.clock - started >= rule.warmup_seconds
        if frozen is None:
            holds = measured >= rule.min_current and measured >= height * expected and chance <= probability
        else:  # keeps firing while it is still well above what the alert started against
            floor = max(2.0, math.ceil(rule.min_current / 2))
            holds = measured >= floor and measured >= height / 2 * expected and chance <= probability * HOLD
        finding.holds = warmed and holds
        finding.expected = expected
        finding.baseline = expected / exposure
        finding.frozen = expected / exposure
        finding.chance = chance
        finding.severity = severity(rule, finding.group, judged)
        noun = "people with unbound sign-ins" if rule.count == "users" else "unbound sign-ins"
        started_with = ", at the rate the alert started with" if frozen is not None else ""
        finding.why = (
            f"{measured:g} {noun}{breakdown(rule, judged)} in {span_text(rule.window)} against {expected:.1f} expected "
            f"from {exposure - len(judged):.0f} healthy sign-ins{started_with}; "
            f"a chance of {chance:.1g} across {moment.tested} groups" + ("" if warmed else "; warming up")
        )

    def lessons(
        self, rule: Rule, window: int, totals: Mapping[str, Counts], moment: Moment
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Learn each group's finished window; counts far above the expectation are learnt only up to the firing
        floor, so an incident does not teach the rule that incidents are usual (a lasting change still is
        learnt, slowly)."""
        half_life = half_life_windows(rule)
        height = rule.min_height or DEFAULT_MIN_HEIGHT
        groups: list[tuple[Any, ...]] = []
        parents: dict[str, list[float]] = {}
        population = [0.0, 0.0]
        moment.current = totals
        for key, counts in totals.items():
            if is_any_code(rule, key):
                continue
            now = part(rule, key, counts, moment)
            measured = min(now.measured, max(rule.min_current - 1, math.floor(height * now.expected)))
            groups.append(("learn", key, window, measured, now.exposure, half_life))
            parent = parent_key(rule, key)
            if parent is not None:
                sums = parents.setdefault(parent, [0.0, 0.0])
                sums[0] += measured
                sums[1] += now.exposure
            population[0] += measured
            population[1] += now.exposure
        groups += [("learn", key, window, u, j, half_life) for key, (u, j) in parents.items()]
        rule_updates: list[tuple[Any, ...]] = [("learnt", window)]
        if population[1]:
            rule_updates.insert(0, ("population", window, population[0], population[1], half_life))
        return groups, rule_updates


def part(rule: Rule, key: str, counts: Counts, moment: Moment) -> Part:
    """One counted group judged on its own: its people, its healthy sign-ins, and what they lead to expect."""
    measured = float(counts.measure(rule.count))
    scale = any_code_key(rule, key)  # a code's people scale with the judged sign-ins of every code
    judged = counts if scale is None else moment.current.get(scale, Counts())
    exposure = healthy(judged, moment.before.get(scale or key), rule.window, counts.unbound if scale else 0)
    expectation = expect(rule, key, moment)
    return Part(key, measured, exposure, expectation.rate * exposure, min(expectation.shape, DISPERSION))


def healthy(counts: Counts, earlier: Counts | None, window: float, unbound: int = 0) -> float:
    """What the expectation scales with: the window's healthy sign-ins (judged and not unbound), or, when more,
    the last half hour's per window (a few sign-ins are too noisy a yardstick); plus one, so a group whose every
    sign-in is unbound still has a finite, learnt expectation. (`unbound`: a code group's own unbound sign-ins,
    to take from the judged sign-ins of every code.)"""
    now = max(0, counts.judged - counts.unbound - unbound)
    around = now + (max(0, earlier.judged - earlier.unbound) if earlier else 0)
    return max(float(now), around * window / max(window, EXPOSURE_SPAN)) + 1.0


def combined_shape(parts: list[Part]) -> float:
    """The shape of the sum of the parts' negative binomials (moment-matched): as sure as they are together."""
    mean = sum(p.expected for p in parts)
    variance = sum(p.expected + p.expected**2 / p.shape for p in parts if p.shape > 0)
    return mean**2 / (variance - mean) if variance > mean else math.inf


def severity(rule: Rule, group: Mapping[str, str], parts: list[Part]) -> str:
    """A combined alert is as severe as its most severe part that is itself well above usual (at least
    `PART_PEOPLE`, never one person, and at least `min_height` times its own expectation): an unusual burst
    that already blocks people pages; one that would only block them is a warning."""
    found = rule.severity_of(group)
    if not rule.combine:
        return found
    height = rule.min_height or DEFAULT_MIN_HEIGHT
    for item in parts:
        if item.measured >= PART_PEOPLE and item.measured >= height * item.expected:
            labels = dict(zip(rule.group_by, json.loads(item.key), strict=True))
            candidate = rule.severity_of(labels)
            if SEVERITY_RANK.get(candidate, 0) > SEVERITY_RANK.get(found, 0):
                found = candidate
    return found


def breakdown(rule: Rule, parts: list[Part]) -> str:
    """How a combined count splits over what it combines: ' (4 enforced, 8 report_only)'."""
    if not rule.combine or len(parts) < 2:
        return ""
    shown = []
    for item in sorted(parts, key=lambda p: -p.measured):
        labels = dict(zip(rule.group_by, json.loads(item.key), strict=True))
        shown.append(f"{item.measured:g} {' '.join(labels[d] for d in rule.combine)}")
    return " (" + ", ".join(shown) + ")"


def half_life_windows(rule: Rule) -> float:
    return (rule.baseline or DEFAULT_HALF_LIFE) / rule.window


def window_index(rule: Rule, at: float) -> int:
    """The learning window (aligned on multiples of the rule's window) that `at` falls in."""
    return minute_of(at) // window_minutes(rule)


def window_minutes(rule: Rule) -> int:
    return max(1, round(rule.window / BUCKET_SECONDS))


def parent_key(rule: Rule, key: str) -> str | None:
    """The group without its last dimension (an app without its enforcement mode), when there is one."""
    return _parent(key) if len(rule.group_by) >= 2 else None


@functools.lru_cache(maxsize=65_536)
def _parent(key: str) -> str:
    values = json.loads(key)[:-1]
    return PARENT + json.dumps(values, separators=(",", ":"), ensure_ascii=False)


def _decayed(entry: list[float] | None, now: int, half_life: float) -> tuple[float, float]:
    if not entry:
        return 0.0, 0.0
    weight = decay(half_life, now - entry[2])
    return entry[0] * weight, entry[1] * weight


def expect(rule: Rule, key: str, moment: Moment) -> Expectation:
    """The group's rate: its own evidence, shrunk towards its parent's, shrunk towards the population's."""
    half_life = half_life_windows(rule)
    now = window_index(rule, moment.clock)
    units, judged = _decayed(moment.state.population, now, half_life)
    mean = (PRIOR[0] + units) / (PRIOR[1] + judged)
    shape = HETEROGENEITY
    parent = parent_key(rule, key)
    if parent is not None:
        units, judged = _decayed(moment.memory.get(parent), now, half_life)
        mean = (HETEROGENEITY + units) / (HETEROGENEITY / mean + judged)
        shape = min(CLOSENESS, HETEROGENEITY + units)  # no surer than the evidence behind the parent
    units, judged = _decayed(moment.memory.get(key), now, half_life)
    alpha = shape + units
    return Expectation(alpha / (shape / mean + judged), alpha)


KIND = Unusual()
