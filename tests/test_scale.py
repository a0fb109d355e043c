"""The scale simulation (`make bench-scale`) at a tiny size: two function instances as processes on one Azurite,
partitions split between them, batches redelivered; the stored verdicts and window counts must equal a clean
in-memory replay. No timing is asserted: the simulator itself must be able to fail, and it fails on a mismatch."""

from __future__ import annotations

from pathlib import Path

import orjson

from bench import scale
from tests.support import azurite


def test_two_instances_with_redelivery_give_the_clean_replays_verdicts(
    azurite_server: azurite.Azurite, tmp_path: Path
) -> None:
    corpus = scale.scale_corpus(300, tmp_path)
    result = scale.measure(
        azurite_server.connection_string, corpus, 2, partitions=4, batch=1, redeliver_every=2, settle_minutes=0.25
    )
    assert [sorted(i["partitions"]) for i in result.per_instance] == [[0, 2], [1, 3]]
    assert sum(i["records"] for i in result.per_instance) == corpus.records == 300
    assert result.redelivered > 0  # some batches ran twice
    assert result.requests > 0
    assert result.mismatches == 0
    assert result.window_mismatches == 0
    assert result.unbound[0] == result.unbound[1] > 0
    assert result.alerting[0] == result.alerting[1]


def test_a_sign_ins_requests_may_land_on_different_partitions(tmp_path: Path) -> None:
    corpus = scale.scale_corpus(1000, tmp_path)
    where: dict[str, set[int]] = {}
    for index, part in enumerate(scale.split(corpus.bodies, 4)):
        for item in part:
            for record in orjson.loads(item)["records"]:
                where.setdefault(record["properties"]["correlationId"], set()).add(index)
    assert any(len(parts) > 1 for parts in where.values())
    assert all(part for part in scale.split(corpus.bodies, 4))


def test_the_comparison_counts_a_changed_a_missing_and_an_extra_sign_in() -> None:
    wanted = {"a": ("bound",), "b": ("unbound",), "c": ("bound",)}
    found = {"a": ("bound",), "b": ("bound",), "d": ("bound",)}
    assert scale.mismatches(found, wanted) == 3
