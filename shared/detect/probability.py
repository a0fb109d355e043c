"""Tail probabilities of counts: how improbable is seeing at least x when about mu were expected.

Pure math, no dependencies: the Poisson tail (regularized incomplete gamma) and the
negative binomial tail (regularized incomplete beta), both accurate down to the
smallest doubles, because the tails that matter here are tiny (1e-6 and below) and a
`1 - cdf` would lose them. The negative binomial is the Gamma-Poisson mixture: a
Poisson count whose rate is itself uncertain (Gamma with shape `shape`), which is
what a rate learnt from a short or noisy history is. As `shape` grows it becomes the
Poisson.
"""

from __future__ import annotations

import math

_EPS = 1e-15
_TINY = 1e-300
_MAX_ITER = 10_000


def poisson_tail(x: float, mean: float) -> float:
    """P(X >= x) for X ~ Poisson(mean)."""
    if x <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    return gamma_lower_regularized(math.ceil(x), mean)


def negbin_tail(x: float, mean: float, shape: float) -> float:
    """P(X >= x) for X negative binomial with this mean and shape (variance mean + mean^2 / shape).

    P(X >= x) = I_z(x, shape) with z = mean / (mean + shape): the regularized incomplete beta.
    """
    if x <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if shape <= 0 or math.isinf(shape):
        return poisson_tail(x, mean)
    return beta_regularized(math.ceil(x), shape, mean / (mean + shape))


def negbin_quantile(probability: float, mean: float, shape: float, limit: int = 1_000_000) -> int:
    """The least x with P(X >= x) <= probability: the count that a tail test at this level needs."""
    low, high = 0, max(1, math.ceil(mean))
    while negbin_tail(high, mean, shape) > probability:
        low, high = high, high * 2
        if high > limit:
            return limit
    while low + 1 < high:
        middle = (low + high) // 2
        if negbin_tail(middle, mean, shape) > probability:
            low = middle
        else:
            high = middle
    return high


def gamma_lower_regularized(a: float, x: float) -> float:
    """P(a, x) = gamma(a, x) / Gamma(a): a series below a + 1, else 1 - Q by a continued fraction."""
    if x <= 0:
        return 0.0
    if x < a + 1:
        return _gamma_series(a, x)
    return 1.0 - _gamma_fraction(a, x)


def _gamma_series(a: float, x: float) -> float:
    term = total = 1.0 / a
    n = a
    for _ in range(_MAX_ITER):
        n += 1
        term *= x / n
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * total


def _gamma_fraction(a: float, x: float) -> float:
    """Q(a, x) by the modified Lentz continued fraction."""
    b = x + 1 - a
    c = 1 / _TINY
    d = 1 / b
    h = d
    for i in range(1, _MAX_ITER):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < _EPS:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def beta_regularized(a: float, b: float, z: float) -> float:
    """I_z(a, b), the regularized incomplete beta; the direct fraction on the side where it is small."""
    if z <= 0:
        return 0.0
    if z >= 1:
        return 1.0
    if z < (a + 1) / (a + b + 2):
        return math.exp(_beta_front(a, b, z)) * _beta_fraction(a, b, z)
    return 1.0 - math.exp(_beta_front(b, a, 1 - z)) * _beta_fraction(b, a, 1 - z)


def _beta_front(a: float, b: float, z: float) -> float:
    """log of z^a (1-z)^b / (a B(a, b))."""
    return a * math.log(z) + b * math.log1p(-z) + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) - math.log(a)


def _beta_fraction(a: float, b: float, z: float) -> float:
    """The continued fraction of I_z(a, b) (modified Lentz)."""
    c = 1.0
    d = 1 - (a + b) * z / (a + 1)
    d = 1 / (_TINY if abs(d) < _TINY else d)
    h = d
    for m in range(1, _MAX_ITER):
        m2 = 2 * m
        even = m * (b - m) * z / ((a - 1 + m2) * (a + m2))
        odd = -(a + m) * (a + b + m) * z / ((a + m2) * (a + 1 + m2))
        for coefficient in (even, odd):
            d = 1 + coefficient * d
            d = 1 / (_TINY if abs(d) < _TINY else d)
            c = 1 + coefficient / c
            c = _TINY if abs(c) < _TINY else c
            h *= d * c
        if abs(d * c - 1) < _EPS:
            break
    return h
