"""Exact run-length calibration of integer Bernoulli CUSUMs (Markov chain, no simulation).

A Bernoulli CUSUM ``S = max(0, S + x*log(p1/p0) + (1-x)*log((1-p1)/(1-p0)))`` is, after
dividing by ``log(p1/p0) - log((1-p1)/(1-p0))``, the walk ``S' = max(0, S' + x - gamma)``
(Reynolds and Stoumbos, 1999). driftline runs it on integers,
``T = max(0, T + c*x - g)`` with ``g/c ~ gamma``, so the detector that runs *is* a finite
Markov chain on ``0 .. H-1`` and its average run length (ARL) is the solution of one
linear system (Brook and Evans, 1972): no discretisation error, no bootstrap. The only
approximation left is that ``H`` is an integer, so the ARL is hit to within one step of
``H`` (we take the smallest ``H`` whose ARL reaches the target).

>>> chain = BernoulliChain.design(p0=0.05, p1=0.10)
>>> h = chain.threshold_for(ert=1000, p=0.05)
>>> 1000 <= chain.arl(p=0.05, h=h) < 1150
True
>>> chain.arl(p=0.10, h=h) < 200  # in control it waits ~1000 updates, out of control far less
True
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.linalg import solve_banded

#: Above this many states a (banded) solve costs more than a few ms; coarsen the integer
#: grid instead.
MAX_STATES = 4000


@dataclass(frozen=True, slots=True)
class BernoulliChain:
    """The integer CUSUM ``T = max(0, T + up*x - down*(1-x))`` with ``up = c - g``, ``down = g``."""

    c: int
    g: int

    @property
    def up(self) -> int:
        return self.c - self.g

    @property
    def down(self) -> int:
        return self.g

    @classmethod
    def design(cls, p0: float, p1: float, resolution: int = 8) -> BernoulliChain:
        """The chain optimal (Page's CUSUM) for a rate change ``p0 -> p1 > p0``."""
        if not 0 < p0 < p1 < 1:
            raise ValueError(f"need 0 < p0 < p1 < 1, got p0={p0}, p1={p1}")
        a = math.log(p1 / p0)
        b = math.log((1 - p1) / (1 - p0))
        gamma = -b / (a - b)
        # g steps of size 1/c per zero: larger g follows gamma more closely and makes
        # the ARL a finer function of H, at the cost of more states.
        g = max(1, resolution)
        c = max(g + 1, round(g / gamma))
        return cls(c=c, g=g)

    def arl(self, p: float, h: int) -> float:
        """Average run length from ``T = 0`` to ``T >= h`` when ``x ~ Bernoulli(p)``."""
        return _arl(self.up, self.down, h, p)

    def threshold_for(self, ert: float, p: float) -> int:
        """The smallest ``H`` whose in-control ARL (at rate ``p``) is at least ``ert``."""
        return _threshold(self.up, self.down, float(ert), ((float(p), 1.0),))


def _arl(up: int, down: int, h: int, p: float) -> float:
    if h <= up:
        # any 1 alarms at once: geometric wait for the first 1 (plus a few zeros that
        # cannot matter because T stays at 0 only when it is already 0)
        return 1.0 / p
    return _banded_arl(((up, p), (-down, 1.0 - p)), h)


def _banded_arl(steps: tuple[tuple[int, float], ...], h: int) -> float:
    """ARL from 0 of ``T = max(0, T + step)`` to ``T >= h``: ``(I - P) m = 1`` on the
    states ``0 .. h-1``. ``I - P`` is banded (a state reaches at most ``max step`` up and
    ``-min step`` down, and the floor at 0 only from rows within that reach), so a banded
    solve costs O(h * width^2) where a dense one costs O(h^3): ~30x less at 600 states."""
    lower = max(0, -min(s for s, _ in steps))
    upper = max(0, max(s for s, _ in steps))
    # LAPACK's banded layout: ab[upper + i - j, j] = A[i, j]
    ab = np.zeros((lower + upper + 1, h))
    ab[upper] = 1.0
    idx = np.arange(h)
    for step, prob in steps:
        nxt = idx + step
        ok = nxt < h
        rows, cols = idx[ok], np.maximum(nxt[ok], 0)
        # several steps can land on state 0: accumulate, do not overwrite
        np.add.at(ab, (upper + rows - cols, cols), -prob)
    try:
        arl = float(solve_banded((lower, upper), ab, np.ones(h), check_finite=False)[0])
    except np.linalg.LinAlgError:  # pragma: no cover - (I - P) of a transient chain is regular
        return math.inf
    # beyond ~1e15 the solve is ill-conditioned (and such an ARL means "never" anyway)
    return arl if 0 < arl < 1e15 else math.inf


#: A rate as the points and weights it is averaged over: ((rate, weight), ...)
Rates = tuple[tuple[float, float], ...]


def rate_posterior(ones: int, n: int, nodes: int = 7) -> Rates:
    """Where a rate estimated from ``ones`` in ``n`` may truly be: Gauss-Hermite nodes of
    its Jeffreys posterior, Beta(ones + 1/2, n - ones + 1/2), taken as normal on the
    logit scale (where it is close to normal, and skewed like it on the rate scale)."""
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    a, b = ones + 0.5, n - ones + 0.5
    logit = math.log(a / b) + math.sqrt(1 / a + 1 / b) * x
    return tuple((float(1 / (1 + math.exp(-v))), float(wi / w.sum()))
                 for v, wi in zip(logit, w, strict=True))


@lru_cache(maxsize=4096)
def _threshold(up: int, down: int, ert: float, rates: Rates) -> int:
    """The smallest ``H`` whose false-alarm rate, averaged over ``rates``, is at most
    ``1 / ert`` (for one rate: whose ARL is at least ``ert``)."""
    target = math.log(ert)

    def log_arl(h: int) -> float:
        return -math.log(sum(w / _arl(up, down, h, p) for p, w in rates))

    f_lo = log_arl(up) - target  # at H <= up any 1 alarms: the ARL is 1 / p
    if f_lo >= 0:
        return up
    # log ARL is close to linear in H, so a secant search on it needs ~5 solves where
    # a bisection over H would need ~15.
    memo: dict[int, float] = {}

    def f(h: int) -> float:
        if h not in memo:
            memo[h] = log_arl(h) - target
        return memo[h]

    lo, hi = up, min(2 * (up + down), MAX_STATES)
    while f(hi) < 0:
        if hi >= MAX_STATES:
            raise ValueError("chain too fine for this ERT; lower the resolution")
        lo, hi = hi, min(hi * 2, MAX_STATES)
    return _secant_smallest(f, lo, hi, f_lo if lo == up else f(lo))


def _secant_smallest(f: Callable[[int], float], lo: int, hi: int, f_lo: float) -> int:
    """The smallest ``h`` in ``(lo, hi]`` with ``f(h) >= 0``, given ``f(lo) < 0 <= f(hi)``
    and ``f`` (a log run length minus its target) close to linear: a secant search."""
    while hi - lo > 1:
        f_hi = f(hi)
        guess = round(lo + (hi - lo) * (-f_lo) / (f_hi - f_lo)) if f_hi != f_lo else (lo + hi) // 2
        mid = min(max(guess, lo + 1), hi - 1)
        if f(mid) >= 0:
            hi = mid
        else:
            lo, f_lo = mid, f(mid)
            if mid + 1 < hi and f(mid + 1) >= 0:
                return mid + 1
    return hi


def one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """OpenBLAS on one thread: on a busy 2-core machine its threads fight other processes
    and a 600-state solve took 110-190 ms instead of 6-10 ms (a guardrail CUSUM's
    calibration at ERT 100,000: 0.7 s instead of 0.07 s, on the worker's event loop)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a declared dependency
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def calibrated_chain(p0: float, p1: float, ert: float, *,
                     sample: tuple[int, int] | None = None) -> tuple[BernoulliChain, int]:
    """A chain for ``p0 -> p1`` and its threshold ``H`` with in-control ARL ~ ``ert``.

    With ``sample = (ones, n)``, ``p0`` is an estimate from those counts and the true rate
    is not known: ``H`` is then set so that the false-alarm rate *averaged over where the
    true rate may be* (:func:`rate_posterior`) is ``1 / ert``. Calibrated at the estimate
    alone, a warm-up of 2,000 at a 3 % rate gives one segment in five a run length under
    a quarter of the ERT, and false alarms ~3x as often as configured across segments.

    The grid is chosen so that ``c ~ 60`` (about 300 states at ERT 2,000): fine enough that
    one step of ``H`` moves the ARL by a few %, small enough that calibration costs
    milliseconds. Very rare rates (``p0`` below ~0.002) need ``c > 60`` even at ``g = 1``
    and may miss a large ERT; they are better watched with a larger ``ratio``.
    """
    a = math.log(p1 / p0)
    b = math.log((1 - p1) / (1 - p0))
    gamma = -b / (a - b)
    resolution = max(1, round(60 * gamma))
    rates = rate_posterior(*sample) if sample is not None else ((float(p0), 1.0),)
    with one_blas_thread():
        return _calibrate(p0, p1, ert, resolution, rates)


def _calibrate(p0: float, p1: float, ert: float, resolution: int,
               rates: Rates) -> tuple[BernoulliChain, int]:
    while True:
        chain = BernoulliChain.design(p0, p1, resolution)
        try:
            return chain, _threshold(chain.up, chain.down, float(ert), rates)
        except ValueError:
            if resolution == 1:
                return chain, MAX_STATES
            resolution = max(1, resolution // 2)


# --------------------------------------------------------------------------------------
# CUSUMs on a categorical variable: the integer walk T = max(0, T + w[category])
# --------------------------------------------------------------------------------------
def integer_weights(llr: np.ndarray, resolution: int) -> tuple[int, ...]:
    """A log-likelihood ratio per category as integers, the largest ``resolution`` in size.

    The CUSUM then runs on integers, so it *is* the finite Markov chain that calibrates it.
    Rounding changes the design a little (which change it is tuned to), never the
    calibration, which is computed for the rounded weights.
    """
    llr = np.asarray(llr, dtype=np.float64)
    w = np.round(llr * (resolution / np.abs(llr).max())).astype(int)
    # a category that lowers the statistic must still lower it after rounding
    w = np.where((w == 0) & (llr != 0), np.sign(llr), w).astype(int)
    if not (w > 0).any() or not (w < 0).any():
        raise ValueError("a CUSUM needs categories that raise and categories that lower it")
    return tuple(int(v) for v in w)


def walk_arl(w: tuple[int, ...], p: tuple[float, ...], h: int) -> float:
    """Average run length of ``T = max(0, T + w[c])``, ``c ~ p``, from 0 until ``T >= h``.

    The chain on ``0 .. h-1`` is solved exactly (Brook and Evans, 1972), as for the
    Bernoulli walk: one banded solve of ``h`` unknowns.
    """
    return _walk_arl(tuple(int(v) for v in w), tuple(float(v) for v in p), int(h))


@lru_cache(maxsize=8192)
def _walk_arl(w: tuple[int, ...], p: tuple[float, ...], h: int) -> float:
    return _banded_arl(tuple(zip(w, p, strict=True)), h)


def walk_threshold(w: tuple[int, ...], p: tuple[float, ...], ert: float) -> int:
    """The smallest ``h`` whose in-control ARL (categories ~ ``p``) is at least ``ert``."""
    return _walk_threshold(tuple(int(v) for v in w), tuple(float(v) for v in p), float(ert))


@lru_cache(maxsize=4096)
def _walk_threshold(w: tuple[int, ...], p: tuple[float, ...], ert: float) -> int:
    target = math.log(ert)
    memo: dict[int, float] = {}

    def f(h: int) -> float:
        if h not in memo:
            memo[h] = min(math.log(_walk_arl(w, p, h)), 40.0) - target
        return memo[h]

    # the same secant search on log ARL as for the Bernoulli walk
    lo, hi = 1, 8 * max(w)
    while f(hi) < 0:
        if hi >= MAX_STATES:
            return MAX_STATES
        lo, hi = hi, min(2 * hi, MAX_STATES)
    return _secant_smallest(f, lo, hi, f(lo))


def drift_error(w: tuple[int, ...], p: tuple[float, ...], n: int) -> tuple[float, np.ndarray]:
    """How an error in the category rates, estimated from ``n`` points, moves the walk.

    The run length depends on the rates mostly through the walk's drift ``sum(p * w)``,
    whose standard error from ``n`` points is ``sd(w) / sqrt(n)``. Returns that error and
    the direction of ``p`` that moves the drift by one unit (it sums to zero): the rates
    at an error of ``e`` standard errors are ``p + e * se * direction``. For two
    categories this is the binomial error of a rate.
    """
    pv = np.asarray(p, dtype=np.float64)
    centred = np.asarray(w, dtype=np.float64) - pv @ np.asarray(w, dtype=np.float64)
    var = float(pv @ centred**2)
    return math.sqrt(var / max(n, 1)), pv * centred / max(var, 1e-300)


def perturbed(p: tuple[float, ...], direction: np.ndarray, shift: float) -> tuple[float, ...]:
    """The rates ``p`` moved by ``shift`` along ``direction``, kept a distribution."""
    q = np.clip(np.asarray(p) + shift * direction, 1e-9, None)
    return tuple(float(v) for v in q / q.sum())
