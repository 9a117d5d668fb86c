"""The embedding detector's mean channel (a multivariate EWMA): its false-alarm rate per
update under no change, simulated once per process (see :func:`mean_channel_rates`)."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

#: the threshold grid, in multiples of the subspace's dimension (E[statistic] = k)
MEAN_GRID = np.linspace(1.2, 4.0, 29)


@lru_cache(maxsize=16)
def mean_channel_rates(k: int, lam: float, n_ref: int, n_held: int
                       ) -> tuple[np.ndarray, float]:
    """The mean channel's false-alarm rate per update: ``log`` of it on ``MEAN_GRID * k``
    when the reference's mean is off by a typical error, and its change per unit of that
    error's size (``n_ref * ||error||^2 - k``, chi^2_k - k distributed).

    Under no change the channel's input is (near) normal in k dims around a mean off by
    the reference's estimation error, N(0, I / n_ref), whitened by a covariance estimated
    from ``n_held`` points (Wishart error: the statistic weighs each direction by an
    eigenvalue of the inverse estimate, spread ~sqrt(k / n_held) around 1, and the largest
    weights set its tail). So its rate depends only on k, lambda, n_ref, n_held and those
    errors, not on the data: simulated once per process (Gaussian streams from a reset,
    both errors drawn per stream; by rotation invariance only the weights' eigenvalues
    matter) and shared by every segment. A first alarm is close to exponential past the
    EWMA's warm-up, so a rate is crossings / updates observed (the exponential's MLE under
    censoring); log rates are fitted as a per-threshold level plus one slope in the mean
    error's size, and extrapolated log-linearly in the threshold beyond what the
    simulation observed.
    """
    rng = np.random.default_rng(20_240_611)
    streams, steps, every = 512, 4000, 20
    error = rng.standard_normal((streams, k)).astype(np.float32) / math.sqrt(n_ref)
    rho = n_ref * (error.astype(np.float64) ** 2).sum(axis=1) - k
    shrink = (n_held - k - 2) / (n_held - 1)
    weights = np.empty((streams, k), dtype=np.float32)
    for j in range(streams):
        g = rng.standard_normal((n_held - 1, k))
        weights[j] = shrink / np.linalg.eigvalsh(g.T @ g / (n_held - 1))
    c = lam / (2 - lam)
    e = np.zeros_like(error)
    peak = np.zeros(streams)
    first = np.full((len(MEAN_GRID), streams), steps, dtype=np.int64)
    grid = (MEAN_GRID * k)[:, None]
    for t in range(steps):
        e *= 1 - lam
        e += lam * (rng.standard_normal(e.shape, dtype=np.float32) + error)
        np.maximum(peak, np.einsum("ij,ij,ij->i", e, e, weights) / c, out=peak)
        if t % every == every - 1:  # first crossings to within `every` updates
            first[(peak >= grid) & (first == steps)] = t
    hit = first < steps
    # Poisson regression by hand is overkill: split streams by error size into 4 groups,
    # take each group's MLE rate, and fit level + slope where enough alarms were seen
    order = np.argsort(rho)
    groups = np.array_split(order, 4)
    g_rho = np.array([rho[g].mean() for g in groups])
    g_hits = np.array([[hit[i, g].sum() for g in groups] for i in range(len(MEAN_GRID))])
    g_seen = np.array([[first[i, g].sum() for g in groups] for i in range(len(MEAN_GRID))])
    ok = g_hits >= 15
    slopes = [np.polyfit(g_rho[ok[i]], np.log(g_hits[i, ok[i]] / g_seen[i, ok[i]]), 1)[0]
              for i in range(len(MEAN_GRID)) if ok[i].all()]
    slope = float(np.median(slopes)) if slopes else 0.0
    total = hit.sum(axis=1)
    level = np.log(np.maximum(total, 1) / first.sum(axis=1))
    good = np.flatnonzero(total >= 40)
    top = good[-6:]
    a, b = np.polyfit(MEAN_GRID[top], level[top], 1)
    rest = np.arange(top[-1] + 1, len(MEAN_GRID))
    level[rest] = b + a * MEAN_GRID[rest]
    # the level is the pooled rate at the streams' mean error (rho ~ 0 on average)
    return level, slope
