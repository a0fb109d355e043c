"""The tail probabilities detection judges counts by: known values, and a brute-force sum for any input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.detect.probability import negbin_quantile, negbin_tail, poisson_tail


def _negbin_pmf(k: int, mean: float, shape: float) -> float:
    p = shape / (shape + mean)
    log = math.lgamma(k + shape) - math.lgamma(shape) - math.lgamma(k + 1) + shape * math.log(p)
    return math.exp(log + k * math.log1p(-p))


def _poisson_pmf(k: int, mean: float) -> float:
    return math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1))


def _upper_sum(pmf, x: int, mean: float) -> float:  # type: ignore[no-untyped-def]
    """P(X >= x) summed term by term from x up (no cancellation, unlike 1 - cdf); 0 when it underflows."""
    total, k = 0.0, x
    while k < x + 2_000_000:
        term = pmf(k)
        total += term
        k += 1
        if k > x + 20 + 10 * mean and term <= total * 1e-17:
            break
    return total


@pytest.mark.parametrize(
    ("x", "mean", "shape", "expected"),
    [  # 5 against 1.5 is not an incident, 60 against 1.5 is one at once, whatever the dispersion
        (5, 1.5, math.inf, 1.86e-2),
        (5, 1.5, 2, 5.58e-2),
        (5, 1.5, 1, 7.78e-2),
        (60, 1.5, math.inf, 1.01e-72),
        (60, 1.5, 1, 4.89e-14),
        (60, 1.5, 0.5, 4.53e-9),
        (250, 2.5, 1, 2.94e-37),
        (3, 0.033, math.inf, 5.84e-6),
    ],
)
def test_known_tails(x: int, mean: float, shape: float, expected: float) -> None:
    assert negbin_tail(x, mean, shape) == pytest.approx(expected, rel=0.01)


def test_edges() -> None:
    assert negbin_tail(0, 3.0, 2.0) == 1.0 and poisson_tail(0, 3.0) == 1.0
    assert negbin_tail(1, 0.0, 2.0) == 0.0 and poisson_tail(4, 0.0) == 0.0
    assert 0.0 < poisson_tail(400, 2.5) < 1e-300 or poisson_tail(400, 2.5) == 0.0  # far below any threshold


@settings(max_examples=300, deadline=None)
@given(
    x=st.integers(1, 400),
    mean=st.floats(0.01, 300, allow_nan=False),
    shape=st.floats(0.2, 500, allow_nan=False),
)
def test_the_negative_binomial_tail_equals_its_sum(x: int, mean: float, shape: float) -> None:
    exact = _upper_sum(lambda k: _negbin_pmf(k, mean, shape), x, mean)
    if exact > 1e-280:
        assert negbin_tail(x, mean, shape) == pytest.approx(min(1.0, exact), rel=1e-7, abs=1e-300)


@settings(max_examples=200, deadline=None)
@given(x=st.integers(1, 400), mean=st.floats(0.01, 300, allow_nan=False))
def test_the_poisson_tail_equals_its_sum(x: int, mean: float) -> None:
    exact = _upper_sum(lambda k: _poisson_pmf(k, mean), x, mean)
    if exact > 1e-280:
        assert poisson_tail(x, mean) == pytest.approx(min(1.0, exact), rel=1e-7, abs=1e-300)


@given(mean=st.floats(0.05, 100), shape=st.floats(0.5, 100), level=st.sampled_from([1e-2, 1e-4, 1e-7]))
def test_the_quantile_is_the_least_count_below_the_level(mean: float, shape: float, level: float) -> None:
    x = negbin_quantile(level, mean, shape)
    assert negbin_tail(x, mean, shape) <= level
    assert x == 0 or negbin_tail(x - 1, mean, shape) > level


def test_more_dispersion_needs_a_bigger_count() -> None:
    """The same level needs more people when the rate is less sure (overdispersion roughly doubles it)."""
    assert negbin_quantile(1e-6, 2.0, math.inf) < negbin_quantile(1e-6, 2.0, 20) < negbin_quantile(1e-6, 2.0, 1)
