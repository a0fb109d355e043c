"""The rules file: TOML validated with pydantic, every mistake named by file, rule and field.

Rules (what to detect), routes (where alerts go), silences (what to mute) and
defaults (lifecycle timings). What each rule kind needs and does is the kind's own
module (`shared/detect/kinds/`); the destinations routes may name are the
registry's (`shared/notify/registry.py`).
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.core.alert import SEVERITY_RANK
from shared.notify.registry import DESTINATION_NAMES
from shared.settings import ConfigurationError

from .grouping import DIMENSIONS
from .kinds import KINDS

log = logging.getLogger("bindwatch.rules")
DEFAULT_RULES_FILE = Path(__file__).resolve().parents[2] / "rules.toml"

Dimension = Literal[DIMENSIONS]  # type: ignore[valid-type]
Severity = Literal["critical", "error", "warning", "info"]
EnforcementLabel = Literal["none", "report_only", "enforced"]
LABELS = frozenset({*DIMENSIONS, "rule", "severity", "kind"})  # what routes and silences can match

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
    group_wait: Duration = 30.0  # an incident waits this long for more alerts before its first notification
    repeat_interval: Duration = 4 * 3600.0
    resolve_after: Duration = 900.0


class Incidents(BaseModel):
    """[incidents]: which alerts are one incident, so each destination hears of it once (and of its end)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    correlate_by: tuple[Dimension, ...] = ("app", "os", "status_code")
    dominant_share: float = Field(0.6, gt=0, le=1)
    warnings_wait: Duration = 120.0  # an alert below `error` waits this long (at least group_wait) to be notified
    max_alerts: int = Field(30, ge=1, le=200)  # alerts an incident's notifications show in full


class Guardrail(BaseModel):
    """[guardrail]: the watch after a token protection policy is switched On or widened (docs/guardrail.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    watch: Duration = Field(3600.0, gt=0, le=86400)  # how long after a switch its blocks are compared
    lookback: Duration = Field(86400.0, ge=3600, le=7 * 86400)  # the report-only results a prediction rests on
    explain_within: Duration = Field(3600.0, ge=0, le=86400)  # alerts this soon after a change name it
    min_blocked: int = Field(10, ge=1)  # blocked sign-ins a page needs, however small the prediction
    factor: float = Field(3.0, gt=1)  # blocks at least this many times the predicted count
    chance: float = Field(0.001, gt=0, lt=1)  # and this unlikely under the prediction (Poisson tail)
    severity: Severity = "critical"
    # Destinations of a page, and of the "as predicted" and resolved messages; unset: every configured
    # destination, except PagerDuty for "as predicted" (nobody should be woken to hear that all is well).
    page_receivers: tuple[str, ...] | None = None
    info_receivers: tuple[str, ...] | None = None

    @field_validator("page_receivers", "info_receivers")
    @classmethod
    def _known(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for name in value or ():
            if name not in DESTINATION_NAMES:
                raise ValueError(f"unknown destination {name!r} (known: {', '.join(DESTINATION_NAMES)})")
        return value


class InhibitRule(BaseModel):
    """[[inhibit_rules]] as in Alertmanager: while a source alert fires, matching target alerts with the same
    values of `equal` are decided and logged but not notified."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_match: LabelFilters = Field(min_length=1)
    target_match: LabelFilters = Field(min_length=1)
    equal: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _known_labels(self) -> InhibitRule:
        _check_labels(self.source_match)
        _check_labels(self.target_match)
        _check_labels(dict.fromkeys(self.equal))
        return self


class Rule(BaseModel):
    """One [[rules]] entry; which fields apply depends on `kind` (docs/rules.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    kind: str
    title: str = ""
    description: str = ""
    severity: Severity = "warning"
    enabled: bool = True
    severity_by_enforcement: dict[EnforcementLabel, Severity] = Field(default_factory=dict)
    group_by: tuple[Dimension, ...] = ()
    combine: tuple[Dimension, ...] = ()
    match: Filters = Field(default_factory=dict)
    exclude: Filters = Field(default_factory=dict)
    count: Literal["signins", "users"] = "signins"
    window: Duration = 600.0
    threshold: int | None = Field(None, ge=1)
    baseline: Duration | None = None
    spike_height: float | None = Field(None, gt=1)
    min_current: int = Field(1, ge=1)
    min_baseline: int = Field(0, ge=0)
    warmup: Duration | None = None
    probability: float | None = Field(None, gt=0, lt=1)
    min_height: float | None = Field(None, ge=1)
    ratio: float | None = Field(None, gt=0, le=1)
    min_volume: int = Field(1, ge=1)
    lookback: Duration | None = None
    repeat_interval: Duration | None = None
    resolve_after: Duration | None = None
    group_wait: Duration | None = None

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"{value!r} is not a rule kind (use one of {', '.join(KINDS)})")
        return value

    @model_validator(mode="after")
    def _fits_kind(self) -> Rule:
        kind = KINDS[self.kind]
        for name in kind.required:
            if getattr(self, name) is None:
                raise ValueError(f"field {name}: required for a {self.kind} rule")
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError("field group_by: a dimension is listed twice")
        if not set(self.combine) <= set(self.group_by):
            raise ValueError("field combine: only dimensions of group_by can be combined")
        if self.combine and not kind.combines:
            raise ValueError(f"field combine: a {self.kind} rule cannot combine groups (an unusual rule can)")
        kind.check(self)
        for filters, name in ((self.match, "match"), (self.exclude, "exclude")):
            _check_filter_values(filters, name)
        return self

    @property
    def judged_by_code(self) -> bool:
        """Grouping by code, a learning kind counts judged sign-ins under every code at once (its exposure)."""
        return "status_code" in self.group_by and KINDS[self.kind].learns

    @property
    def warmup_seconds(self) -> float:
        return self.warmup if self.warmup is not None else KINDS[self.kind].warmup(self)

    def span_seconds(self) -> float:
        """How far back its evaluation reads window counts."""
        return self.window + KINDS[self.kind].lookback(self)

    def enforcement(self) -> str:
        """'report_only' or 'enforced' when the rule keeps to one, else 'any'."""
        values = self.match.get("enforcement", ())
        return values[0] if len(values) == 1 else "any"

    def severity_of(self, group: Mapping[str, str]) -> Severity:
        """An alert's severity: by its enforcement when the rule says so (enforced blocks are the urgent ones)."""
        enforcement = group.get("enforcement") or self.enforcement()
        return self.severity_by_enforcement.get(enforcement, self.severity)  # type: ignore[call-overload]


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
    receivers: tuple[str, ...] = Field(min_length=1)

    @field_validator("receivers")
    @classmethod
    def _known_receivers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if name not in DESTINATION_NAMES:
                raise ValueError(f"{name!r} is not a destination (use one of {', '.join(DESTINATION_NAMES)})")
        return value

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
    incidents: Incidents = Field(default_factory=Incidents)
    guardrail: Guardrail = Field(default_factory=Guardrail)
    rules: tuple[Rule, ...] = ()
    routes: tuple[Route, ...] = ()
    silences: tuple[Silence, ...] = ()
    inhibit_rules: tuple[InhibitRule, ...] = ()

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

    def group_wait(self, rule: Rule, severity: str | None = None) -> float:
        """How long an alert that starts firing waits before its incident tells anyone: warnings wait longer, so
        that an enforced alert of the same cause can join and the first card is already headed by it."""
        wait = rule.group_wait or self.defaults.group_wait
        if SEVERITY_RANK.get(severity or rule.severity, 0) < SEVERITY_RANK["error"]:
            wait = max(wait, self.incidents.warnings_wait)
        return wait

    def span_seconds(self) -> float:
        """How far back of the event clock evaluation reads window counts (learning kinds read their last
        finished window, which ends the allowed lateness before the clock)."""
        lateness = self.defaults.allowed_lateness
        spans = [r.span_seconds() + (lateness + r.window if KINDS[r.kind].learns else 0.0) for r in self.active_rules]
        return max([*spans, lateness])


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
    if "rules" not in raw:
        # An empty or truncated file would silently turn every alert off: that must be said on purpose.
        raise ConfigurationError(
            f"rules file {file}: no rules at all, so nothing would ever alert; add [[rules]], or write `rules = []` "
            "to run without alerting on purpose"
        )
    rules = parse_rules(raw, str(file))
    if not rules.active_rules:
        log.warning("rules file %s: no enabled rule (rules = []): alerting is off", file)
    return rules


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
    if len(loc) >= 2 and loc[0] in ("rules", "routes", "silences", "inhibit_rules") and isinstance(loc[1], int):
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
