"""Property tests for the rules-file loader: outside input either loads or stops with a named, clean error."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.detect.grouping import DIMENSIONS
from shared.detect.rules import RulesFile, load_rules, parse_rules
from shared.settings import ConfigurationError

names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
durations = st.one_of(
    st.integers(min_value=1, max_value=10**6),
    st.builds(lambda n, u: f"{n}{u}", st.integers(min_value=1, max_value=999), st.sampled_from(["s", "m", "h", "d"])),
)
anything = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
fields = st.sampled_from(
    [
        "kind",
        "window",
        "threshold",
        "baseline",
        "spike_height",
        "min_current",
        "min_baseline",
        "warmup",
        "ratio",
        "min_volume",
        "lookback",
        "group_by",
        "match",
        "exclude",
        "severity",
        "repeat_interval",
        "resolve_after",
        "surprise",
    ]
)


@st.composite
def valid_rule(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["threshold", "spike", "ratio", "new"]))
    dims = [d for d in DIMENSIONS if not (kind == "ratio" and d == "status_code")]
    rule: dict[str, Any] = {
        "name": draw(names),
        "kind": kind,
        "window": draw(durations),
        "group_by": draw(st.lists(st.sampled_from(dims), unique=True, max_size=3)),
        "match": draw(
            st.dictionaries(
                st.sampled_from(["app", "user", "os"]), st.text(min_size=1, max_size=8).filter(str.strip), max_size=2
            )
        ),
    }
    if kind == "threshold":
        rule["threshold"] = draw(st.integers(min_value=1, max_value=1000))
    elif kind == "spike":
        rule |= {"baseline": draw(durations), "spike_height": draw(st.floats(min_value=1.01, max_value=100))}
    elif kind == "ratio":
        rule |= {"ratio": draw(st.floats(min_value=0.01, max_value=1.0)), "min_volume": draw(st.integers(1, 500))}
    else:
        rule["lookback"] = draw(durations)
    return rule


@given(st.lists(valid_rule(), max_size=4, unique_by=lambda r: r["name"]))
def test_valid_rules_always_load(entries: list[dict[str, Any]]) -> None:
    loaded = parse_rules({"rules": entries})
    assert [r.name for r in loaded.rules] == [e["name"] for e in entries]
    assert all(r.window > 0 for r in loaded.rules)


@given(valid_rule(), fields, anything)
def test_a_mangled_rule_loads_or_names_the_rule(entry: dict[str, Any], field: str, value: Any) -> None:
    entry = {**entry, field: value}
    try:
        loaded = parse_rules({"rules": [entry]}, "f.toml")
    except ConfigurationError as error:
        message = str(error)
        assert message.startswith("rules file f.toml: ")
        assert f"rule {entry['name']!r}" in message
    else:
        assert isinstance(loaded, RulesFile)


@given(anything)
def test_any_document_loads_or_fails_cleanly(document: Any) -> None:
    try:
        parse_rules(document, "f.toml")
    except ConfigurationError as error:
        assert str(error).startswith("rules file f.toml: ")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.text(max_size=200))
def test_any_text_file_loads_or_fails_cleanly(tmp_path: Path, text: str) -> None:
    file = tmp_path / "rules.toml"
    file.write_text(text, encoding="utf-8")
    try:
        load_rules(file)
    except ConfigurationError as error:
        assert str(error).startswith(f"rules file {file}: ")


def test_the_shipped_file_is_plain_toml() -> None:
    from shared.detect.rules import DEFAULT_RULES_FILE

    assert tomllib.loads(DEFAULT_RULES_FILE.read_text(encoding="utf-8"))["rules"]
