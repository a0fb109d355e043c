"""How a sign-in maps to the groups a rule counts it in: its value per dimension, filtered and combined.

Pure. A rule groups by dimensions (app, resource, status code, enforcement, user,
platform, client app, category) and filters on them; a sign-in with several apps
or codes counts once in each combination of its values.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from shared.core.signin import SignIn

if TYPE_CHECKING:
    from .rules import Rule

DIMENSIONS: tuple[str, ...] = ("app", "resource", "status_code", "enforcement", "user", "os", "client_app", "category")
NONE_VALUE = "(none)"  # the group value of a sign-in that has no value for a dimension
ANY_CODE = "*"  # the status code judged sign-ins are counted under by rules whose exposure needs them


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
        wanted = _folded(rule.match[dimension])
        candidates = tuple(v for v in candidates if v.casefold() in wanted)
    if dimension in rule.exclude:
        unwanted = _folded(rule.exclude[dimension])
        candidates = tuple(v for v in candidates if v.casefold() not in unwanted)
    return candidates


@functools.lru_cache(maxsize=1024)
def _folded(values: tuple[str, ...]) -> frozenset[str]:
    """A filter's values, case-folded once (not once per sign-in)."""
    return frozenset(v.casefold() for v in values)


def group_keys(rule: Rule, signin: SignIn, unbound: bool) -> list[str]:
    """The groups a sign-in counts in for a rule (none when filtered out); each combination of values once."""
    return _group_keys(rule, unbound, lambda dimension: dimension_values(signin, dimension))


def _group_keys(rule: Rule, unbound: bool, values_of: Callable[[str], tuple[str, ...]]) -> list[str]:
    per_dimension: dict[str, tuple[str, ...]] = {}
    for dimension in {*rule.match, *rule.exclude, *rule.group_by}:
        if dimension == "status_code" and not unbound:
            if not rule.judged_by_code:
                return []  # a judged sign-in has no code to group or filter by
            per_dimension[dimension] = (ANY_CODE,)  # ...but a rule may count it for every code at once
            continue
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
        signature = (rule.name, unbound, *map(values, dimensions))
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


def any_code_key(rule: Rule, key: str) -> str | None:
    """For a group of one status code, the group of the same values with every code (its judged sign-ins)."""
    if "status_code" not in rule.group_by:
        return None
    return _any_code_key(rule.group_by.index("status_code"), key)


@functools.lru_cache(maxsize=65_536)
def _any_code_key(index: int, key: str) -> str:
    values = json.loads(key)
    values[index] = ANY_CODE
    return group_key(values)


def is_any_code(rule: Rule, key: str) -> bool:
    return "status_code" in rule.group_by and _value_at(rule.group_by.index("status_code"), key) == ANY_CODE


@functools.lru_cache(maxsize=65_536)
def _value_at(index: int, key: str) -> str:
    return json.loads(key)[index]


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode  # json.dumps's, made once


def group_key(values: Iterable[str]) -> str:
    return _ENCODE(list(values))


def group_of(rule: Rule, key: str) -> dict[str, str]:
    return dict(zip(rule.group_by, json.loads(key), strict=True))


def alert_dimensions(rule: Rule) -> tuple[str, ...]:
    """What one alert of a rule is about: its group_by without the dimensions it judges together (`combine`)."""
    return _alert_dimensions(rule.group_by, rule.combine)


@functools.lru_cache(maxsize=1024)
def _alert_dimensions(group_by: tuple[str, ...], combine: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(d for d in group_by if d not in combine)


def alert_key(rule: Rule, key: str) -> str:
    """The alert a counted group belongs to (itself, unless the rule combines some of its dimensions).
    Remembered: evaluation asks for every counted group in a window, every minute."""
    if not rule.combine:
        return key
    return _alert_key(rule.group_by, rule.combine, key)


@functools.lru_cache(maxsize=65_536)
def _alert_key(group_by: tuple[str, ...], combine: tuple[str, ...], key: str) -> str:
    values = dict(zip(group_by, json.loads(key), strict=True))
    return group_key(values[d] for d in _alert_dimensions(group_by, combine))


def alert_group(rule: Rule, key: str) -> dict[str, str]:
    return dict(zip(alert_dimensions(rule), json.loads(key), strict=True))


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
