"""The same sign-ins, in every shape an admin holds, give the same verdict lines and the same report figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.app import compose
from shared.ingest.files import messages_from
from shared.ingest.replay import Replay
from tests.support.shapes import WRITERS, corpus, write

CORPUS = corpus()
SHAPES = sorted(set(WRITERS) - {"eventhub-lines"})


def judged(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any], Replay]:
    pipeline, readiness = compose.report_pipeline(600.0)
    replay = Replay(pipeline)
    messages = messages_from([str(path)], inputs=replay.inputs)
    lines = [line for outcome in replay.run(messages) for line in outcome.lines if line["type"] == "verdict"]
    lines.sort(key=lambda line: (line["correlation_id"], line["revision"]))
    return lines, readiness.figures(), replay


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], dict[str, Any], Replay]:
    return judged(write("eventhub-lines", CORPUS, tmp_path_factory.mktemp("baseline")))


def test_the_baseline_is_worth_comparing(baseline: tuple[list[dict[str, Any]], dict[str, Any], Replay]) -> None:
    lines, _, replay = baseline
    verdicts = {line["verdict"] for line in lines}
    assert verdicts == {"bound", "unbound", "unevaluated"}
    assert {c for line in lines for c in line["categories"]} == {"SignInLogs", "NonInteractiveUserSignInLogs"}
    assert {line["enforcement"] for line in lines} == {"enforced", "report_only", "none"}
    assert replay.tally.duplicates > 0 and replay.tally.rejected == 0
    assert len(lines) == len({line["correlation_id"] for line in lines}) == 240


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_gives_the_same_verdicts_and_figures(
    shape: str, tmp_path: Path, baseline: tuple[list[dict[str, Any]], dict[str, Any], Replay]
) -> None:
    lines, figures, replay = judged(write(shape, CORPUS, tmp_path))
    expected_lines, expected_figures, expected_replay = baseline
    assert replay.tally.rejected == 0, dict(replay.rejected_by_reason)
    assert sum(replay.tally.skipped.values()) == 0
    assert replay.tally.records == expected_replay.tally.records == len(CORPUS)
    assert lines == expected_lines
    assert figures == expected_figures
    assert replay.summary() | {"messages": 0, "inputs": []} == expected_replay.summary() | {"messages": 0, "inputs": []}


@pytest.mark.parametrize(
    ("shape", "recognised"),
    [
        ("eventhub-files", "eventhub"),
        ("archive", "archive"),
        ("archive-gzip", "archive"),
        ("graph-array-pretty", "graph"),
        ("graph-lines", "graph"),
        ("graph-utf16", "graph"),
        ("graph-pages", "graph-page"),
        ("log-analytics-rows", "log-analytics"),
        ("log-analytics-api", "log-analytics-api"),
        ("log-analytics-csv-gzip", "log-analytics-csv"),
    ],
)
def test_each_input_names_the_shape_it_was_read_as(shape: str, recognised: str, tmp_path: Path) -> None:
    _, _, replay = judged(write(shape, CORPUS[:40], tmp_path))
    assert {stats.shape for stats in replay.inputs} == {recognised}
    assert all(stats.gzip == shape.endswith("-gzip") for stats in replay.inputs)


def test_newest_first_read_as_it_is_holds_every_signin_open(tmp_path: Path) -> None:
    """Why file exports are sorted: read newest first, event time never moves on, so nothing settles before the end
    (every sign-in is held in memory, no verdict comes out early, and alerts see a clock running backwards)."""
    path = write("graph-newest-first", CORPUS, tmp_path)

    def most_open(order: str) -> tuple[int, Replay]:
        pipeline, _ = compose.report_pipeline(600.0)
        replay = Replay(pipeline)
        peak = 0
        for _ in replay.run(messages_from([str(path)], order=order, inputs=replay.inputs)):
            peak = max(peak, pipeline.store.open_count())  # type: ignore[attr-defined]
        return peak, replay

    as_is, _ = most_open("input")
    in_order, replay = most_open("time")
    assert as_is == 240 and in_order < 40
    assert replay.inputs[0].sorted_by_time
