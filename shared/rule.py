"""Detection rules: the rules file (TOML, validated with pydantic), how a sign-in maps to groups, and evaluation.

Everything here is pure: evaluation gets the window counts and the event time as
arguments and says, per group, whether the rule's condition holds and why. The
lifecycle (fire, repeat, resolve) is alert.py's; storage is detection_store.py's.
"""

from __future__ import annotations

import itertools
import json
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from .settings import ConfigurationError
from .signin import SignIn
from .window import Buckets, Counts, Span, baseline_span, current_span, total

DEFAULT_RULES_FILE = Path(__file__).resolve().parent.parent / "rules.toml"

Dimension = Literal["app", "resource", "status_code", "enforcement", "user", "os", "client_app", "category"]
DIMENSIONS: tuple[str, ...] = ("app", "resource", "status_code", "enforcement", "user", "os", "client_app", "category")
Kind = Literal["threshold", "spike", "ratio", "new"]
Severity = Literal["critical", "error", "warning", "info"]
Receiver = Literal["teams", "webhook", "pagerduty"]
RECEIVERS: tuple[str, ...] = ("teams", "webhook", "pagerduty")
LABELS = frozenset({*DIMENSIONS, "rule", "severity", "kind"})  # what routes and silences can match
NONE_VALUE = "(none)"  # the group value of a sign-in that has no value for a dimension

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float:
    """'90s', '15m', '1h', '7d' or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '15m', '1h', '7d'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (found := _DURATION.match(value)):
        seconds = float(found.group(1)) * _UNITS[found.group(2)]
    else:
        raise ValueError("a duration is a number of seconds or text like '15m', '1h', '7d'")
    if seconds <= 0:
        raise ValueError("a duration must be above zero")
    return seconds


def _values(value: Any) -> tuple[str, ...]:
    """A filter value: one string (or code) or a list of them."""
    items = value if isinstance(value, list | tuple) else [value]
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise ValueError("values are text (or status code numbers)")
        text = str(item).strip()
        if not text:
            raise ValueError("values must not be empty")
        out.append(text)
    if not out:
        raise ValueError("give at least one value")
    return tuple(out)


def _filters(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise ValueError("a table of dimension = [values]")
    return {str(k): _values(v) for k, v in value.items()}


Duration = Annotated[float, BeforeValidator(parse_duration)]
Filters = Annotated[dict[Dimension, tuple[str, ...]], BeforeValidator(_filters)]
LabelFilters = Annotated[dict[str, tuple[str, ...]], BeforeValidator(_filters)]


class Defaults(BaseModel):
    """[defaults]: lifecycle timings every rule gets unless it sets its own, and stream-wide settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_lateness: Duration = 900.0  # sign-ins this far behind the event clock still land in their window
    group_wait: Duration = 30.0  # alerts deciding within this much event time go out as one notification
    repeat_interval: Duration = 4 * 3600.0
    resolve_after: Duration = 900.0


class Rule(BaseModel):
    """One [[rules]] entry; which fields apply depends on `kind` (docs/rules.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    kind: Kind
    title: str = ""
    description: str = ""
    severity: Severity = "warning"
    enabled: bool = True
    group_by: tuple[Dimension, ...] = ()
    match: Filters = Field(default_factory=dict)
    exclude: Filters = Field(default_factory=dict)
    window: Duration = 600.0
    threshold: int | None = Field(None, ge=1)
    baseline: Duration | None = None
    spike_height: float | None = Field(None, gt=1)
    min_current: int = Field(1, ge=1)
    min_baseline: int = Field(0, ge=0)
    warmup: Duration | None = None
    ratio: float | None = Field(None, gt=0, le=1)
    min_volume: int = Field(1, ge=1)
    lookback: Duration | None = None
    repeat_interval: Duration | None = None
    resolve_after: Duration | None = None

    @model_validator(mode="after")
    def _fits_kind(self) -> Rule:
        required = {"threshold": ("threshold",), "spike": ("baseline", "spike_height"), "ratio": ("ratio",)}
        required["new"] = ("lookback",)
        for name in required[self.kind]:
            if getattr(self, name) is None:
                raise ValueError(f"field {name}: required for a {self.kind} rule")
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError("field group_by: a dimension is listed twice")
        if self.kind == "ratio" and ("status_code" in self.group_by or "status_code" in self.match):
            raise ValueError("field group_by: a ratio rule cannot use status_code (judged sign-ins have no code)")
        for filters, name in ((self.match, "match"), (self.exclude, "exclude")):
            _check_filter_values(filters, name)
        return self

    @property
    def warmup_seconds(self) -> float:
        if self.warmup is not None:
            return self.warmup
        return {"spike": self.baseline or 0.0, "new": self.lookback or 0.0}.get(self.kind, 0.0)

    def span_seconds(self) -> float:
        """How far back its evaluation reads window counts."""
        return self.window + (self.baseline or 0.0 if self.kind == "spike" else 0.0)

    def enforcement(self) -> str:
        """'report_only' or 'enforced' when the rule keeps to one, else 'any'."""
        values = self.match.get("enforcement", ())
        return values[0] if len(values) == 1 else "any"


def _check_filter_values(filters: Mapping[str, tuple[str, ...]], name: str) -> None:
    for value in filters.get("enforcement", ()):
        if value not in ("none", "report_only", "enforced"):
            raise ValueError(f"field {name}.enforcement: {value!r} is not none, report_only or enforced")
    for value in filters.get("status_code", ()):
        if not value.isdigit():
            raise ValueError(f"field {name}.status_code: {value!r} is not a status code number")


class Route(BaseModel):
    """[[routes]]: alerts whose labels match go to these receivers (every matching route adds its receivers)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: LabelFilters = Field(default_factory=dict)
    receivers: tuple[Receiver, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_labels(self) -> Route:
        _check_labels(self.match)
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches(self.match, labels)


class Silence(BaseModel):
    """[[silences]]: a time-boxed mute by matcher; it applies to decisions whose event time falls inside it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: LabelFilters = Field(min_length=1)
    starts: datetime
    ends: datetime
    comment: str = Field(min_length=1)

    @model_validator(mode="after")
    def _valid(self) -> Silence:
        _check_labels(self.match)
        if _utc(self.ends) <= _utc(self.starts):
            raise ValueError("field ends: must be after starts")
        return self

    def mutes(self, labels: Mapping[str, str], at: float) -> bool:
        return _utc(self.starts).timestamp() <= at < _utc(self.ends).timestamp() and matches(self.match, labels)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _check_labels(filters: Mapping[str, Any]) -> None:
    unknown = sorted(set(filters) - LABELS)
    if unknown:
        raise ValueError(f"field match: unknown label {unknown[0]!r} (use one of {', '.join(sorted(LABELS))})")


def matches(filters: Mapping[str, tuple[str, ...]], labels: Mapping[str, str]) -> bool:
    """Every filtered label is present and one of the listed values (case-insensitive)."""
    for name, allowed in filters.items():
        value = labels.get(name)
        if value is None or value.casefold() not in {a.casefold() for a in allowed}:
            return False
    return True


class RulesFile(BaseModel):
    """The whole rules file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: Defaults = Field(default_factory=Defaults)
    rules: tuple[Rule, ...] = ()
    routes: tuple[Route, ...] = ()
    silences: tuple[Silence, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> RulesFile:
        names = [r.name for r in self.rules]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"rule {name!r} is defined twice")
        return self

    @cached_property
    def active_rules(self) -> tuple[Rule, ...]:
        """Read per sign-in on the hot path; a loaded rules file does not change."""
        return tuple(r for r in self.rules if r.enabled)

    def repeat_interval(self, rule: Rule) -> float:
        return rule.repeat_interval or self.defaults.repeat_interval

    def resolve_after(self, rule: Rule) -> float:
        return rule.resolve_after or self.defaults.resolve_after

    def span_seconds(self) -> float:
        spans = [r.span_seconds() for r in self.active_rules]
        return max([*spans, self.defaults.allowed_lateness])


def load_rules(path: Path | str | None = None) -> RulesFile:
    """Read and validate a rules file (None: the shipped rules.toml), or raise ConfigurationError naming the place."""
    file = Path(path) if path is not None else DEFAULT_RULES_FILE
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigurationError(f"rules file {file}: cannot read it ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"rules file {file}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"rules file {file}: not valid TOML ({error})") from None
    return parse_rules(raw, str(file))


def parse_rules(raw: Any, source: str = "rules file") -> RulesFile:
    try:
        return RulesFile.model_validate(raw)
    except ValidationError as error:
        raise ConfigurationError(describe_errors(error, raw, source)) from None


def describe_errors(error: ValidationError, raw: Any, source: str) -> str:
    """Each problem as: the file, the rule (by name) or section, the field, and what is wrong."""
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        problems.append(f"{_place(item['loc'], raw)}: {_message(item)}")
    return f"rules file {source}: " + "; ".join(problems)


def _place(loc: tuple[Any, ...], raw: Any) -> str:
    if len(loc) >= 2 and loc[0] in ("rules", "routes", "silences") and isinstance(loc[1], int):
        section, index = loc[0], loc[1]
        entry = raw.get(section, [None] * (index + 1))[index] if isinstance(raw, dict) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        head = f"rule {name!r}" if section == "rules" and isinstance(name, str) else f"{section}[{index}]"
        rest = ".".join(str(p) for p in loc[2:] if not str(p).startswith("function-"))
        return f"{head} field {rest}" if rest else head
    return "field " + ".".join(str(p) for p in loc) if loc else "file"


def _message(item: Mapping[str, Any]) -> str:
    message = str(item["msg"])
    return message.removeprefix("Value error, ")


# --- sign-ins to groups ---


def dimension_values(signin: SignIn, dimension: str) -> tuple[str, ...]:
    """A sign-in's values for one dimension, as it is when counted (several for apps, resources, codes)."""
    if dimension == "app":
        return signin.apps
    if dimension == "resource":
        return signin.resources
    if dimension == "status_code":
        return tuple(str(c) for c in signin.status_codes)
    if dimension == "enforcement":
        return (signin.enforcement.label,)
    if dimension == "category":
        return signin.categories
    return (getattr(signin, {"user": "user", "os": "os", "client_app": "client_app"}[dimension]),)


def _allowed(rule: Rule, dimension: str, values: tuple[str, ...]) -> tuple[str, ...]:
    """The values left after the rule's match and exclude for this dimension; missing values are '(none)'."""
    candidates = tuple(v for v in values if v) or (NONE_VALUE,)
    if dimension in rule.match:
        wanted = {v.casefold() for v in rule.match[dimension]}
        candidates = tuple(v for v in candidates if v.casefold() in wanted)
    if dimension in rule.exclude:
        unwanted = {v.casefold() for v in rule.exclude[dimension]}
        candidates = tuple(v for v in candidates if v.casefold() not in unwanted)
    return candidates


def group_keys(rule: Rule, signin: SignIn, unbound: bool) -> list[str]:
    """The groups a sign-in counts in for a rule (none when filtered out); each combination of values once."""
    return _group_keys(rule, unbound, lambda dimension: dimension_values(signin, dimension))


def _group_keys(rule: Rule, unbound: bool, values_of: Callable[[str], tuple[str, ...]]) -> list[str]:
    per_dimension: dict[str, tuple[str, ...]] = {}
    for dimension in {*rule.match, *rule.exclude, *rule.group_by}:
        if dimension == "status_code" and not unbound:
            return []  # a judged sign-in has no code to group or filter by
        per_dimension[dimension] = _allowed(rule, dimension, values_of(dimension))
        if not per_dimension[dimension]:
            return []
    combos = itertools.product(*(per_dimension[d] for d in rule.group_by))
    return [group_key(combo) for combo in combos]


class Grouper:
    """group_keys for many sign-ins: most share their app, platform and enforcement, so each answer is kept.

    Counting runs for every judged sign-in and every rule; remembering the keys per distinct combination of
    the values a rule looks at turns that into one dict lookup. The memory is bounded (cleared when full).
    """

    LIMIT = 50_000

    def __init__(self) -> None:
        self._known: dict[tuple[Any, ...], list[str]] = {}
        self._profiles: dict[tuple[Any, ...], list[tuple[Rule, str]]] = {}
        self._dimensions: dict[str, tuple[str, ...]] = {}

    def all_keys(self, rules: Sequence[Rule], signin: SignIn, unbound: bool) -> list[tuple[Rule, str]]:
        """All rules at once: the sign-in's values for every dimension any rule reads make one profile."""
        dimensions = self._dimensions.get("")
        if dimensions is None:
            dimensions = self._dimensions[""] = tuple(sorted({d for r in rules for d in _dimensions_of(r)}))
        profile = (unbound, *[dimension_values(signin, d) for d in dimensions])
        found = self._profiles.get(profile)
        if found is None:
            if len(self._profiles) >= self.LIMIT:
                self._profiles.clear()
            values = Dimensions(signin)
            found = self._profiles[profile] = [(r, k) for r in rules for k in self.keys(r, values, unbound)]
        return found

    def keys(self, rule: Rule, signin: SignIn | Dimensions, unbound: bool) -> list[str]:
        """Rule names are unique within one rules file, and a Grouper serves one rules file."""
        dimensions = self._dimensions.get(rule.name)
        if dimensions is None:
            dimensions = self._dimensions[rule.name] = _dimensions_of(rule)
        values = signin if isinstance(signin, Dimensions) else Dimensions(signin)
        signature = (rule.name, unbound, *(values(d) for d in dimensions))
        found = self._known.get(signature)
        if found is None:
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            values = dict(zip(dimensions, signature[2:], strict=True))
            found = self._known[signature] = _group_keys(rule, unbound, values.__getitem__)
        return found


class Dimensions:
    """One sign-in's dimension values, each read once however many rules ask."""

    __slots__ = ("_seen", "signin")

    def __init__(self, signin: SignIn) -> None:
        self.signin = signin
        self._seen: dict[str, tuple[str, ...]] = {}

    def __call__(self, dimension: str) -> tuple[str, ...]:
        found = self._seen.get(dimension)
        if found is None:
            found = self._seen[dimension] = dimension_values(self.signin, dimension)
        return found


def _dimensions_of(rule: Rule) -> tuple[str, ...]:
    return tuple(sorted({*rule.match, *rule.exclude, *rule.group_by}))


def group_key(values: Iterable[str]) -> str:
    return json.dumps(list(values), separators=(",", ":"), ensure_ascii=False)


def group_of(rule: Rule, key: str) -> dict[str, str]:
    return dict(zip(rule.group_by, json.loads(key), strict=True))


def describe_signin(signin: SignIn) -> dict[str, tuple[str, ...]]:
    """What an alert's top lists count: the sign-in's app, resource, user, platform, code and client."""
    return {
        "app": signin.apps,
        "resource": signin.resources,
        "user": (signin.user,) if signin.user else (),
        "os": (signin.os,) if signin.os else (),
        "status_code": tuple(str(c) for c in signin.status_codes) or ("none",),
        "client_app": (signin.client_app,) if signin.client_app else (),
    }


# --- evaluation ---


@dataclass(slots=True)
class RuleState:
    """What a rule remembers besides window counts: when it first saw traffic (warm-up), and for `new`
    rules, each group's latest episode of unbound sign-ins as [first, last] event times."""

    name: str
    started: float | None = None
    seen: dict[str, list[float]] = field(default_factory=dict)
    etag: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {"name": self.name, "started": self.started, "seen": self.seen}

    @classmethod
    def from_data(cls, data: Mapping[str, Any], etag: str | None = None) -> RuleState:
        seen = {str(k): [float(v[0]), float(v[1])] for k, v in dict(data.get("seen") or {}).items()}
        started = data.get("started")
        return cls(str(data["name"]), None if started is None else float(started), seen, etag)

    def start(self, at: float) -> bool:
        """Note traffic at `at`; True when the stored value has to change."""
        if self.started is None or at < self.started:
            self.started = at
            return True
        return False

    def see(self, key: str, at: float, lookback: float) -> bool:
        """Note an unbound sign-in of a group for a `new` rule; True when worth writing (coarse: hourly)."""
        episode = self.seen.get(key)
        if episode is None or at > episode[1] + lookback:
            self.seen[key] = [at, at]
            return True
        if at < episode[0]:
            episode[0] = at
            return True
        if at > episode[1] + 3600.0:
            episode[1] = at
            return True
        episode[1] = max(episode[1], at)
        return False


@dataclass(slots=True)
class Finding:
    """A rule's verdict for one group at one event time: does its condition hold, and the numbers behind it."""

    rule: Rule
    key: str
    group: dict[str, str]
    holds: bool
    counts: Counts  # the current window's sums (unbound with details, judged)
    current: float  # the measured value: unbound count, or unbound share for ratio rules
    baseline: float | None = None  # spike: baseline count; new: start of the episode
    expected: float | None = None  # spike: the expected count in a window of this length
    why: str = ""


@dataclass(slots=True)
class Moment:
    """What a rule is judged against: the event time, its current window and the rule's memory."""

    clock: float
    window: Span
    state: RuleState


def evaluate(
    rule: Rule,
    buckets: Buckets,
    moment: Moment,
    keys: Iterable[str] = (),
    frozen: Mapping[str, float] | None = None,
) -> list[Finding]:
    """Judge every group in the current window plus `keys` (groups with live alerts), at `moment.clock`.

    `frozen`: for spike rules, the expected count each firing alert started with, so a spike that lasts keeps
    firing when its own counts have raised the baseline.
    """
    current = total(buckets, rule.name, moment.window)
    base = total(buckets, rule.name, baseline_span(moment.clock, rule.window, rule.baseline)) if rule.baseline else {}
    findings = []
    for key in sorted({*current, *keys}):
        finding = Finding(rule, key, group_of(rule, key), False, current.get(key) or Counts(), 0.0)
        finding.current = float(finding.counts.unbound)
        if rule.kind == "threshold":
            _judge_threshold(rule, finding)
        elif rule.kind == "ratio":
            _judge_ratio(rule, finding)
        elif rule.kind == "spike":
            _judge_spike(rule, finding, base.get(key), moment, (frozen or {}).get(key))
        else:
            _judge_new(rule, finding, moment)
        findings.append(finding)
    return findings


def moment_for(rule: Rule, clock: float, state: RuleState) -> Moment:
    return Moment(clock, current_span(clock, rule.window), state)


def _judge_threshold(rule: Rule, finding: Finding) -> None:
    unbound = finding.counts.unbound
    finding.holds = unbound >= (rule.threshold or 1)
    finding.why = f"{unbound} unbound sign-ins in {_span_text(rule.window)} (alerts at {rule.threshold})"


def _judge_ratio(rule: Rule, finding: Finding) -> None:
    counts = finding.counts
    share = min(1.0, counts.unbound / counts.judged) if counts.judged else 0.0
    finding.current = share
    finding.holds = (
        counts.judged >= rule.min_volume and counts.unbound >= rule.min_current and share >= (rule.ratio or 1.0)
    )
    finding.why = (
        f"{counts.unbound} of {counts.judged} judged sign-ins unbound ({share:.0%}) in {_span_text(rule.window)}"
        f" (alerts at {rule.ratio:.0%} with at least {rule.min_volume} sign-ins)"
    )


def _judge_spike(rule: Rule, finding: Finding, base: Counts | None, moment: Moment, frozen: float | None) -> None:
    baseline = rule.baseline or 0.0
    started = moment.state.started
    covered = _covered(started, moment.window, baseline)
    count = base.unbound if base else 0
    observed = count / covered if covered > 0 else 0.0
    expected = frozen if frozen is not None else max(observed, rule.min_baseline / baseline) * rule.window
    warmed = started is not None and moment.clock - started >= rule.warmup_seconds and covered > 0
    unbound = finding.counts.unbound
    finding.baseline = float(count)
    finding.expected = expected
    finding.holds = warmed and unbound >= rule.min_current and unbound >= (rule.spike_height or 1.0) * expected
    finding.why = (
        f"{unbound} unbound sign-ins in {_span_text(rule.window)} against {expected:.1f} expected "
        f"({count} in the {_span_text(baseline)} before{'; the baseline the alert started with' if frozen else ''}); "
        f"alerts at {rule.spike_height:g}x with at least {rule.min_current}" + ("" if warmed else "; warming up")
    )


def _covered(started: float | None, window: Span, baseline: float) -> float:
    """Seconds of the baseline for which there was traffic at all (a young rule has a short baseline)."""
    if started is None:
        return 0.0
    end = window.first * 60.0
    return max(0.0, min(baseline, end - max(end - baseline, started)))


def _judge_new(rule: Rule, finding: Finding, moment: Moment) -> None:
    clock, state = moment.clock, moment.state
    episode = state.seen.get(finding.key)
    first = episode[0] if episode else None
    recent = first is not None and first > clock - rule.window
    warmed = state.started is not None and first is not None and first - state.started >= rule.warmup_seconds
    finding.baseline = first
    finding.holds = recent and warmed and finding.counts.unbound >= rule.min_current
    finding.why = (
        f"first unbound sign-ins after {_span_text(rule.lookback or 0.0)} without any: "
        f"{finding.counts.unbound} in {_span_text(rule.window)}" + ("" if warmed or not recent else "; warming up")
    )


def _span_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def labels(rule: Rule, group: Mapping[str, str]) -> dict[str, str]:
    """What routes and silences match on."""
    base = {"rule": rule.name, "severity": rule.severity, "kind": rule.kind}
    enforcement = group.get("enforcement") or rule.enforcement()
    if enforcement != "any":
        base["enforcement"] = enforcement
    return {**base, **group}


def receivers(rules: RulesFile, rule: Rule, group: Mapping[str, str], configured: Iterable[str]) -> list[str]:
    """Where an alert goes: the configured receivers of every matching route, else every configured destination.

    Routes may name destinations a deployment does not have (the shipped routes name all three); those are
    skipped. When none of the routed ones is configured, the alert still goes to every configured
    destination rather than nowhere.
    """
    available = list(configured)
    found = [r for route in rules.routes if route.matches(labels(rule, group)) for r in route.receivers]
    routed = [r for r in dict.fromkeys(found) if r in available]
    return routed or available


def silenced(rules: RulesFile, rule: Rule, group: Mapping[str, str], at: float) -> bool:
    return any(s.mutes(labels(rule, group), at) for s in rules.silences)
