"""The statistics behind the gate and the golden-versus-live comparison.

Every estimate comes with an interval; a regression is called only when the interval
says so, so a small golden set does not flap the gate on noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True, slots=True)
class Interval:
    estimate: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


def wilson(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of a proportion (sound at small n and near 0 or 1).

    >>> str(wilson(90, 100))
    '0.900 [0.826, 0.945]'
    """
    if n == 0:
        return Interval(math.nan, 0.0, 1.0)
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def proportion_difference(k1: int, n1: int, k2: int, n2: int,
                          confidence: float = 0.95) -> Interval:
    """p1 - p2 with Newcombe's hybrid score interval (method 10).

    >>> str(proportion_difference(80, 100, 95, 100))
    '-0.150 [-0.243, -0.059]'
    >>> proportion_difference(88, 100, 90, 100).high > 0  # 2 points on 100 cases: noise
    True
    """
    a, b = wilson(k1, n1, confidence), wilson(k2, n2, confidence)
    p1, p2 = k1 / n1, k2 / n2
    d = p1 - p2
    low = d - math.sqrt((p1 - a.low) ** 2 + (b.high - p2) ** 2)
    high = d + math.sqrt((a.high - p1) ** 2 + (p2 - b.low) ** 2)
    return Interval(d, low, high)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean with a Student-t interval.

    >>> str(mean_interval([0.8, 0.9, 1.0, 0.7]))
    '0.850 [0.645, 1.055]'
    """
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        m = float(x.mean()) if x.size else math.nan
        return Interval(m, -math.inf, math.inf)
    m, se = float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))
    t = stats.t.ppf(0.5 + confidence / 2, x.size - 1)
    return Interval(m, m - t * se, m + t * se)


def mean_difference(a: Sequence[float], b: Sequence[float],
                    confidence: float = 0.95) -> Interval:
    """mean(a) - mean(b) with Welch's interval (unequal variances)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 2 or y.size < 2:
        return Interval(float(x.mean() - y.mean()) if x.size and y.size else math.nan,
                        -math.inf, math.inf)
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(vx + vy)
    d = float(x.mean() - y.mean())
    if se == 0:
        return Interval(d, d, d)
    dof = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    t = stats.t.ppf(0.5 + confidence / 2, dof)
    return Interval(d, d - t * se, d + t * se)


@dataclass(frozen=True, slots=True)
class DistributionShift:
    """Two samples compared: Mann-Whitney p-value and Cliff's delta with a bootstrap CI."""

    p_value: float
    cliffs_delta: Interval
    n_a: int
    n_b: int

    @property
    def magnitude(self) -> str:
        # Romano et al. (2006) thresholds for |delta|.
        d = abs(self.cliffs_delta.estimate)
        return ("negligible" if d < 0.147 else "small" if d < 0.33
                else "medium" if d < 0.474 else "large")


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """P(a > b) - P(a < b), through ranks in O((n + m) log(n + m))."""
    ranks = stats.rankdata(np.concatenate([a, b]))
    u = ranks[: a.size].sum() - a.size * (a.size + 1) / 2
    return float(2 * u / (a.size * b.size) - 1)


def compare_distributions(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95,
                          resamples: int = 1000, seed: int = 0) -> DistributionShift:
    """Is ``a`` (say live judge scores) shifted against ``b`` (golden)?

    >>> rng = np.random.default_rng(1)
    >>> shift = compare_distributions(rng.normal(0.6, 0.1, 300), rng.normal(0.8, 0.1, 300))
    >>> shift.p_value < 1e-6, shift.magnitude, shift.cliffs_delta.high < 0
    (True, 'large', True)
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        return DistributionShift(math.nan, Interval(math.nan, -1.0, 1.0), x.size, y.size)
    p = float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)
    rng = np.random.default_rng(seed)
    boots = [cliffs_delta(rng.choice(x, x.size), rng.choice(y, y.size))
             for _ in range(resamples)]
    lo, hi = np.quantile(boots, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return DistributionShift(p, Interval(cliffs_delta(x, y), float(lo), float(hi)),
                             x.size, y.size)
