"""Input drift on embeddings: calibrated CUSUMs over an honest, split-half sketch of a reference."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detectors.calibration import (
    drift_error,
    integer_weights,
    one_blas_thread,
    perturbed,
    walk_arl,
    walk_threshold,
)
from detectors.lifecycle import Episodes, version_of
from detectors.mean_channel import MEAN_GRID, mean_channel_rates
from detectors.snapshot import PickleSnapshot

#: largest integer step of a shift/spread channel: ~150-300 chain states at ERT 2,000
SHIFT_RESOLUTION = 12
#: largest integer step of a cell channel: fine enough that a rare cell's small downward
#: step is not rounded into another design (a 6 % cell at (12, -1) would be tuned to a
#: 1.5x rise and its run length 12x as sensitive to its rate's error; at (30, -3) it is
#: the 2x rise it should be), coarse enough for ~400-state chains
CELL_RESOLUTION = 30
#: draws of the reference's estimation error the ERT is averaged over
MONTE_CARLO = 4000
#: where each channel's run length is solved exactly, in standard errors of its drift
ERROR_NODES = np.array([-3.0, -1.5, 0.0, 1.5, 3.0])
#: Dirichlet draws of a view's true bin rates whose run lengths are solved exactly
PERTURBATIONS = 48
_ONE = np.ones(1)
#: the mean channel's share of the false alarms (the CUSUM channels have the rest)
MEAN_SHARE = 0.8


@dataclass(frozen=True)
class Channel:
    """One CUSUM of the detector: the view it reads, its integer weight per category, the
    score its window reports, its name, and the error it shares with its opposite."""

    view: int
    weights: tuple[int, ...]
    score: np.ndarray
    name: str
    group: str
    sign: int


def _kmeans(z: np.ndarray, k: int, rng: np.random.Generator, iters: int = 25) -> np.ndarray:
    # k-means++ seeding, then Lloyd; a few dozen iterations on 500 points cost ~10 ms
    centres = [z[rng.integers(len(z))]]
    for _ in range(1, k):
        d2 = np.min([((z - c) ** 2).sum(axis=1) for c in centres], axis=0)
        centres.append(z[rng.choice(len(z), p=d2 / d2.sum())])
    c = np.array(centres)
    for _ in range(iters):
        lab = np.argmin(((z[:, None, :] - c[None]) ** 2).sum(axis=2), axis=1)
        new = np.array([z[lab == j].mean(axis=0) if np.any(lab == j) else c[j]
                        for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return c


def _participation(rates: np.ndarray) -> np.ndarray:
    """Per row, the share of channels that carry its false alarms: 1 when all channels
    alarm alike, 1/k when one of k does."""
    return rates.sum(axis=1) ** 2 / (rates.shape[1] * (rates**2).sum(axis=1))


class EmbeddingDrift(Episodes, PickleSnapshot):
    """Multivariate input drift against a reference set of embeddings, calibrated to an ERT.

    **Sketch, fitted on one half of the reference.** Its mean and top ``components``
    principal directions; per vector, a handful of *views*: ``residual`` (squared distance
    from the principal subspace, Q), ``spread`` (Hotelling's T^2 inside it), ``pc1`` ..
    ``pcN`` (the position along the top ``projections`` directions), each cut into
    ``bins`` categories; and ``cell`` (the nearest of ``cells`` k-means centres in the
    whitened subspace).

    **Null frequencies, from the other half.** The bin edges are that half's quantiles
    and the cell frequencies its counts: the points were not used to fit the sketch, so
    they fall into the categories as unseen live traffic does. (Fitted on the same points,
    a PCA overstates the spread along its own directions and its mean leans towards them:
    on BANKING77 that alone made a no-change stream alarm every ~80 updates.)

    **Channels**, each an integer CUSUM ``T = max(0, T + w[category])`` whose weights are
    the log-likelihood ratio of one designed change: per view, its position moving up or
    down and its spread narrowing or widening (exponential tilts of size ``shift`` of the
    first two Legendre scores of the bin's quantile), and per cell, its rate rising by
    ``ratio``. A new topic shows as a residual or spread shift and a cell's rise; a surge
    of known topics as a shift along the directions that separate them.

    **The mean channel** (``smoothing`` > 0): a multivariate EWMA (MEWMA, Lowry et al.,
    1992) of the vector's coordinates in the principal subspace, whitened by the held-out
    half's covariance and centred on the whole reference's mean; it alarms when the
    EWMA's squared length, in units of its null variance, reaches its threshold. It is the
    classic test for a shift of the mean in an unknown direction, and it pools every
    direction of the subspace at once, where a view sees one: a new topic at a few
    percent of traffic moves the mean a little along many directions.

    **Calibration.** Each CUSUM's run length is exact (its Markov chain, as for
    :class:`detectors.rate.BernoulliCusum`), averaged over the error of the frequencies
    estimated from half the reference (Dirichlet draws of each view's bin rates). All
    CUSUMs share one per-channel target, set so that the *first* alarm of any channel
    comes after ``ert`` updates on average: a few hundred thousand simulated updates of the
    integer walks (categories resampled from the held-out half; about 0.1-0.5 s) account
    for the channels' correlation. The mean channel takes 80 % of the false alarms; its run
    length is simulated once per process for Gaussian input with the reference's errors
    (its mean's and its covariance's), which depends on the dimensions and sample sizes
    only, so every segment shares it (~2 s, once).

    **An update** is one (d x 2k) projection and a dozen small vector operations
    (~20,000-30,000/s at 384 dims on one core).

    Assumptions: under no change the stream is exchangeable with the reference (same
    embedder, same population, sampling independent of the input); the ERT is an average
    over the reference's sampling error, so one particular reference of 1,000 points may
    give a somewhat shorter or longer run length.

    >>> rng = np.random.default_rng(0)
    >>> basis = rng.normal(size=(8, 64))
    >>> reference = rng.normal(size=(1000, 8)) @ basis + 0.3 * rng.normal(size=(1000, 64))
    >>> detector = EmbeddingDrift(reference, ert=20_000, seed=0)
    >>> detector.threshold
    1.0
    >>> new_topic = rng.normal(size=64) * 2.0
    >>> alarms = []
    >>> for i in range(1500):
    ...     x = rng.normal(size=8) @ basis + 0.3 * rng.normal(size=64)
    ...     if i >= 500 and rng.random() < 0.10:  # a new topic, 10 % of traffic
    ...         x = new_topic + 0.3 * rng.normal(size=64)
    ...     detector.update(x)
    ...     if detector.drift_detected:  # the channel, and how far the recent mean moved
    ...         alarms.append((i, detector.channel, detector.mean_before, detector.mean_after))
    >>> [(500 <= i < 700, channel, before, after > 0.5) for i, channel, before, after in alarms]
    [(True, 'mean', 0.0, True)]
    >>> clone = EmbeddingDrift.from_state(detector.state())
    >>> clone.reference_version == detector.reference_version
    True
    """

    name = "embedding_cusum"
    smoothing = 0.0  # snapshots taken before the mean channel existed restore without it
    #: at the end of the warm-up, wait for the caller to run :meth:`calibrated_copy`
    #: (the worker runs it in a thread: seconds of CPU must not stall its event loop)
    defer_calibration = False

    def __init__(
        self,
        reference: np.ndarray | None = None,
        *,
        ert: float = 2000.0,
        components: int = 32,
        projections: int = 4,
        bins: int = 10,
        cells: int = 0,
        shift: float = 0.4,
        ratio: float = 2.0,
        smoothing: float = 0.01,
        warmup: int = 1000,
        seed: int = 0,
        reference_version: str | None = None,
        defer_calibration: bool = False,
    ) -> None:
        if ert <= 1:
            raise ValueError(f"ert must be > 1 update, got {ert}")
        if not 0 <= projections <= components:
            raise ValueError(f"projections must be in [0, components], got {projections}")
        if bins < 3:
            raise ValueError(f"bins must be >= 3, got {bins}")
        if shift <= 0 or ratio <= 1:
            raise ValueError(f"need shift > 0 and ratio > 1, got {shift}, {ratio}")
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.ert = float(ert)
        self.components = components
        self.projections = projections
        self.bins = bins
        self.cells = cells
        self.shift = shift
        self.ratio = ratio
        self.smoothing = smoothing
        self.warmup = warmup
        self.seed = seed
        self.defer_calibration = defer_calibration
        self.n = 0
        self.reference_version = "warmup"
        self._buffer: list[np.ndarray] | None = []
        self.channel = ""
        self.channels: list[str] = []
        self.predicted_ert = math.nan
        if reference is not None:
            self.set_reference(reference, version=reference_version)

    # -- reference -------------------------------------------------------------------
    @property
    def min_reference(self) -> int:
        """Fewest reference points: each half needs ~10 per bin and per cell."""
        return 2 * 10 * max(self.bins, self.cells, 10)

    def set_reference(self, reference: np.ndarray, *, version: str | None = None) -> None:
        """Fit the sketch and recalibrate against ``reference`` (n x d); re-arms."""
        x = np.asarray(reference, dtype=np.float64)
        if x.ndim != 2 or len(x) < self.min_reference:
            raise ValueError(f"reference must be (n, d) with n >= {self.min_reference}")
        with one_blas_thread():
            self._fit(x)
            self._calibrate()
        # only calibration needs the held-out half's categories
        del self._held
        self._buffer = None
        self.reference_version = version or version_of(x)
        self.acknowledge()

    def _fit(self, x: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(x))
        fit, held = x[order[: len(x) // 2]], x[order[len(x) // 2:]]
        self._mu = fit.mean(axis=0)
        centred = fit - self._mu
        # eigh of the d x d scatter matrix, not an SVD of the n x d data: ~10x cheaper at
        # 500 x 384, and only the top k directions are kept anyway
        evals, evecs = np.linalg.eigh(centred.T @ centred)
        # at least half the dimensions stay outside the subspace, so the residual view
        # has something to measure
        k = max(1, min(self.components, len(evals) // 2, len(fit) - 2))
        top = np.argsort(evals)[::-1][:k]
        self._basis = evecs[:, top].copy()  # (d, k)
        self._inv_sd = 1.0 / np.sqrt(np.maximum(evals[top], 1e-24) / (len(fit) - 1))
        self._sums = np.column_stack([np.ones(k), self._inv_sd**2 / k])
        proj = centred @ self._basis
        self._resid_mean = max(float(
            (np.einsum("ij,ij->i", centred, centred) - np.einsum("ij,ij->i", proj, proj)).mean()
        ), 1e-12)
        self._m = min(self.projections, k)
        self.views = ["residual", "spread"] + [f"pc{j + 1}" for j in range(self._m)]
        if self.cells:
            self._centres = _kmeans(proj * self._inv_sd, self.cells, rng)
            self._half_c2 = 0.5 * (self._centres**2).sum(axis=1)
            self.views.append("cell")
        # the held-out half: the bins are its quantiles, the cell rates its frequencies
        values = self._values(held)
        qs = np.arange(1, self.bins) / self.bins
        self._edges = np.quantile(values, qs, axis=0).T.copy()  # (views, bins - 1)
        self._held = self.categories(held)
        self._n_null = len(held)
        if self.smoothing:
            self._fit_mean(held, n_ref=len(x))

    def _fit_mean(self, held: np.ndarray, n_ref: int) -> None:
        """The mean channel's coordinates: the subspace whitened by the *held-out* half's
        covariance (the fitted half overstates the variance along its own directions),
        centred on the whole reference's mean."""
        z = ((held - self._mu) @ self._basis) * self._inv_sd
        k = z.shape[1]
        # the fitted half's mean is 0 in these coordinates: the whole reference's is half
        # the held-out one's
        centre = z.mean(axis=0) / 2
        evals, evecs = np.linalg.eigh(np.cov(z, rowvar=False))
        # an inverse estimated from n points overstates the statistic by (n-1)/(n-k-2) on
        # average (the Wishart mean): scale it back
        shrink = (len(z) - k - 2) / (len(z) - 1)
        whiten = (evecs / np.sqrt(np.maximum(evals, 1e-12))) @ evecs.T * math.sqrt(shrink)
        # The EWMA step e' = (1 - smoothing) e + smoothing (whitened coordinates - centre)
        # as one product of [projection, e, 1] (the projection is already computed for
        # the views): one small matrix, not a second d x k product, and one numpy call
        # where five would cost a quarter of an update
        lam = self.smoothing
        self._mean_map = np.vstack([lam * (self._inv_sd[:, None] * whiten),
                                    (1 - lam) * np.eye(k), -lam * (centre @ whiten)[None]])
        self._n_ref = n_ref
        # the EWMA's variance is c times its input's: the statistic is chi^2_k-like
        self._c = self.smoothing / (2 - self.smoothing)

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        if "_inv_sd" in state and "_sums" not in state:  # a snapshot from before it existed
            k = len(self._inv_sd)
            self._sums = np.column_stack([np.ones(k), self._inv_sd**2 / k])

    def _values(self, x: np.ndarray) -> np.ndarray:
        """(n, 2 + m): residual and spread (each ~1 on average), then the top projections."""
        centred = x - self._mu
        proj = centred @ self._basis
        z = proj * self._inv_sd
        spread = np.einsum("ij,ij->i", z, z) / len(self._inv_sd)
        resid = (np.einsum("ij,ij->i", centred, centred)
                 - np.einsum("ij,ij->i", proj, proj)) / self._resid_mean
        return np.column_stack([resid, spread, proj[:, : self._m]])

    def is_novel(self, x: np.ndarray) -> bool:
        """Whether one vector lies farther from the reference's principal subspace than
        the top bin edge of the residual view (the scoring stage's per-trace row)."""
        return bool(self.novel(x)[0])

    def novel(self, x: np.ndarray) -> np.ndarray:
        """:meth:`is_novel` of each row of ``x``."""
        values = self._values(np.atleast_2d(np.asarray(x, dtype=np.float64)))
        return values[:, 0] > self._edges[0, -1]

    def categories(self, x: np.ndarray) -> np.ndarray:
        """(n, views) category of each row of ``x`` in each view (batches and benchmarks)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        values = self._values(x)
        cats = (values[:, :, None] > self._edges[None]).sum(axis=2)
        if not self.cells:
            return cats
        z = ((x - self._mu) @ self._basis) * self._inv_sd
        cell = np.argmax(z @ self._centres.T - self._half_c2, axis=1)
        return np.column_stack([cats, cell])

    def _designs(self) -> tuple[list[Channel], list[tuple[float, ...]]]:
        """The channels, and the estimated category rates of each view."""
        u = (np.arange(self.bins) + 0.5) / self.bins
        uniform = tuple(np.full(self.bins, 1.0 / self.bins))
        legendre = {"up": math.sqrt(3) * (2 * u - 1),
                    "narrows": -math.sqrt(5) * (6 * u * u - 6 * u + 1)}
        scores = {"up": u, "narrows": np.abs(2 * u - 1)}
        opposite = {"up": "down", "narrows": "widens"}
        designs: list[Channel] = []
        rates: list[tuple[float, ...]] = []
        for v, view in enumerate(self.views[: len(self.views) - bool(self.cells)]):
            rates.append(uniform)
            for kind, psi in legendre.items():
                # a narrower or wider spread along one direction is rare in practice and
                # seen by the spread view anyway: 8 channels of false alarms, no detection
                # on BANKING77
                if kind == "narrows" and view not in ("residual", "spread"):
                    continue
                for sign in (1, -1):
                    llr = sign * self.shift * psi
                    llr = llr - math.log(float(np.mean(np.exp(llr))))
                    designs.append(Channel(
                        v, integer_weights(llr, SHIFT_RESOLUTION), scores[kind],
                        f"{view}:{kind if sign > 0 else opposite[kind]}", f"{view}:{kind}", sign))
        if self.cells:
            counts = np.bincount(self._held[:, -1], minlength=self.cells).astype(float)
            p = (counts + 0.5) / (counts.sum() + 0.5 * self.cells)
            rates.append(tuple(p))
            for j in range(self.cells):
                p1 = min(self.ratio * p[j], (1 + p[j]) / 2)
                llr = np.full(self.cells, math.log((1 - p1) / (1 - p[j])))
                llr[j] = math.log(p1 / p[j])
                designs.append(Channel(
                    len(rates) - 1, integer_weights(llr, CELL_RESOLUTION),
                    (np.arange(self.cells) == j).astype(float), f"cell{j}", f"cell{j}", 1))
        return designs, rates

    def _calibrate(self) -> None:
        designs, rates = self._designs()
        self.channels = [d.name for d in designs] + (["mean"] if self.smoothing else [])
        self._mean_before = np.array([float(np.asarray(rates[d.view]) @ d.score)
                                      for d in designs])
        # One row per (view, category): what that category adds to every channel's
        # statistic (its weight, 0 for channels of other views) and to its score. An
        # update then sums one row per view: a single gather, whatever the channel count.
        self._offsets = np.cumsum([0] + [len(r) for r in rates[:-1]])
        table = np.zeros((sum(len(r) for r in rates), 2 * len(designs)))
        for j, d in enumerate(designs):
            rows = self._offsets[d.view] + np.arange(len(d.weights))
            table[rows, j] = d.weights
            table[rows, len(designs) + j] = d.score
        self._table = table
        rng = np.random.default_rng(self.seed + 1)
        # The channels are nearly, not exactly, independent (spread and the projections
        # share directions): the run length of the first of them is measured once by
        # simulation at a cheap level and the ratio to the sum of rates reused.
        target = 1000.0 * len(designs)
        h = self._set_h(designs, rates, target)
        point_rates = np.array([1.0 / walk_arl(d.weights, rates[d.view], h[j])
                                for j, d in enumerate(designs)])
        self.overlap = self._simulated_run_length(rng) * point_rates.sum()
        point_share = _participation(point_rates[None])[0]
        # The category rates are estimates from the held-out half, and one channel's run
        # length is very sensitive to its rate (a cell rate 10 % low halves it). So the
        # ERT is the mean run length *averaged over that estimation error*: a Monte
        # Carlo over Gaussian errors of each view's and cell's rates (the two directions
        # of one view share their error, with opposite signs), on run lengths
        # interpolated between exact chain solves at -3 .. +3 standard errors.
        groups = sorted({d.group for d in designs})
        draws = rng.standard_normal((MONTE_CARLO, len(groups)))
        z = draws[:, [groups.index(d.group) for d in designs]] * [d.sign for d in designs]
        # A view's bins are its held-out quantiles: their true rates are a Dirichlet draw
        # around uniform, and the view's channels share that draw. Their run lengths are
        # solved exactly for a fixed set of such draws (all views share one design).
        n_views = len(self.views) - bool(self.cells)
        uniform = np.full(self.bins, 1.0 / self.bins)
        dirichlet = [tuple(q) for q in rng.dirichlet(uniform * self._n_null, PERTURBATIONS)]
        pick = rng.integers(PERTURBATIONS, size=(MONTE_CARLO, n_views))
        # the mean channel's rate under each draw of the reference mean's error
        error_size = (rng.standard_normal((MONTE_CARLO, self._basis.shape[1])) ** 2).sum(
            axis=1) - self._basis.shape[1]
        share = MEAN_SHARE if self.smoothing else 0.0
        target = self.ert * len(designs) / (1 - share)
        for _ in range(8):
            h = self._set_h(designs, rates, target)
            mean_rate = self._set_mean_h(target / len(designs) * (1 - share) / share,
                                         error_size) if share else 0.0
            log_rate = np.zeros((MONTE_CARLO, len(designs)))
            for j, d in enumerate(designs):
                if d.view < n_views:
                    table = np.array([-math.log(walk_arl(d.weights, q, h[j]))
                                      for q in dirichlet])
                    log_rate[:, j] = table[pick[:, d.view]]
                    continue
                # a cell's channel depends on its own rate only: binomial error, 1-D
                se, direction = drift_error(d.weights, rates[d.view], self._n_null)
                nodes = [-math.log(walk_arl(d.weights, perturbed(rates[d.view], direction,
                                                                 e * se), h[j]))
                         for e in ERROR_NODES]
                log_rate[:, j] = np.interp(z[:, j], ERROR_NODES, nodes)
            rate = np.exp(log_rate)
            # the overlap was measured with every channel contributing alike; where one
            # error draw lets a few channels dominate, there is less of it to gain
            overlap = 1.0 + (self.overlap - 1.0) * _participation(rate) / point_share
            # the mean channel counted as independent of the CUSUMs: they share data, so
            # the true run length is if anything a little longer
            run_length = 1.0 / (rate.sum(axis=1) / overlap + mean_rate)
            self.predicted_ert = float(np.mean(run_length))
            if abs(self.predicted_ert / self.ert - 1) < 0.03:
                break
            target *= self.ert / self.predicted_ert

    def _set_mean_h(self, arl: float, error_size: np.ndarray) -> np.ndarray:
        """The mean channel's threshold for a run length of ``arl`` at a typical error
        of the reference's mean; returns its rate under each draw of that error."""
        k = self._basis.shape[1]
        level, slope = mean_channel_rates(k, self.smoothing, self._n_ref, self._n_null)
        # log rates fall with the threshold: interpolate on the reversed arrays
        self._h_mean = float(k * np.interp(-math.log(arl), level[::-1], MEAN_GRID[::-1]))
        at_h = float(np.interp(self._h_mean / k, MEAN_GRID, level))
        return np.exp(at_h + slope * error_size)

    def _set_h(self, designs: list[Channel], rates: list[tuple[float, ...]],
               target: float) -> np.ndarray:
        """Every channel's threshold for an ARL of ``target`` at the estimated rates."""
        self._h = np.array([walk_threshold(d.weights, rates[d.view], target) for d in designs],
                           dtype=np.float64)
        return self._h

    def _simulated_run_length(self, rng: np.random.Generator, alarms: int = 300) -> float:
        """Mean updates between alarms of the whole detector, its categories resampled from
        the held-out half (so the channels' correlations are the data's)."""
        streams = 256
        # one increment row per held-out point: a step is then one gather of rows
        k = len(self._h)
        steps_of = self._table[self._offsets + self._held].sum(axis=1)[:, :k].astype(np.int32)
        h = self._h.astype(np.int32)
        t = np.zeros((streams, len(h)), dtype=np.int32)
        seen = raised = 0
        while raised < alarms and seen < 100_000 * alarms:
            t += steps_of[rng.integers(len(steps_of), size=streams)]
            np.maximum(t, 0, out=t)
            hit = (t >= h).any(axis=1)
            if hit.any():
                t[hit] = 0
                raised += int(hit.sum())
            seen += streams
        return seen / max(raised, 1)

    @property
    def calibrated(self) -> bool:
        return self._buffer is None

    @property
    def calibration_pending(self) -> bool:
        """The warm-up is complete and its calibration deferred (``defer_calibration``):
        updates are ignored until :meth:`calibrated_copy` replaces this detector."""
        return self._buffer is not None and len(self._buffer) >= self.warmup

    def calibrated_copy(self) -> EmbeddingDrift:
        """A copy calibrated on the warm-up's vectors. This detector is only read, so the
        calibration can run in another thread while snapshots and readers still see a
        consistent (warming-up) detector; the caller swaps the copy in."""
        if self._buffer is None:
            raise ValueError("no warm-up buffer: the detector is calibrated already")
        twin = copy.copy(self)  # set_reference rebinds every attribute it changes
        twin.set_reference(np.stack(self._buffer[: self.warmup]).astype(np.float64))
        return twin

    # -- updates ---------------------------------------------------------------------
    def update(self, x: np.ndarray) -> None:  # type: ignore[override]
        self._alarm = False
        v = np.asarray(x, dtype=np.float64)
        if self._buffer is not None:
            if len(self._buffer) >= self.warmup:
                return  # a deferred calibration is pending: the reference is complete
            # float16: 1,000 x 384 buffered vectors snapshot to 0.77 MB, under Kafka's
            # default 1 MB message limit for the changelog; PCA does not need more digits
            self._buffer.append(v.astype(np.float16))
            if len(self._buffer) >= self.warmup and not self.defer_calibration:
                self.set_reference(np.stack(self._buffer).astype(np.float64))
            return
        centred = v - self._mu
        proj = centred @ self._basis
        # |proj|^2 and the mean squared whitened coordinate in one product
        norms = (proj * proj) @ self._sums
        values = np.empty(2 + self._m)
        values[0] = (centred @ centred - norms[0]) / self._resid_mean
        values[1] = norms[1]
        values[2:] = proj[: self._m]
        # np.add.reduce, not .sum(): the method's Python wrapper is a tenth of an update
        cats = np.add.reduce(values[:, None] > self._edges, axis=1)
        if self.cells:
            z = proj * self._inv_sd
            cats = np.append(cats, (self._centres @ z - self._half_c2).argmax())
        self.update_features(cats, proj if self.smoothing else None)

    def update_many(self, x: np.ndarray) -> int:
        """:meth:`update` with the rows of ``x`` in order, their projections computed in
        one product (~1.6x the rate of single updates; equal to them up to rounding).

        Stops after the row that raised an alarm, or that filled the warm-up, so the
        caller can read what the alarm carries (or calibrate) before going on; returns
        how many rows it took. A pending deferred calibration takes none.
        """
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if self._buffer is not None:
            for i, row in enumerate(x):
                if self.calibration_pending:
                    return i
                self.update(row)
                if self._buffer is None:
                    return i + 1  # calibrated inline: the rest goes the batched way
            return len(x)
        cats, proj = self.features(x)
        for i, cat in enumerate(cats):
            self.update_features(cat, None if proj is None else proj[i])
            if self._alarm:
                return i + 1
        return len(x)

    def features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`categories` of the rows of ``x`` and their projections on the sketch's
        subspace, the mean channel's input (``None`` without it): :meth:`update` in
        batches, for benchmarks."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if not self.smoothing:
            return self.categories(x), None
        return self.categories(x), (x - self._mu) @ self._basis

    def update_features(self, cats: Sequence[int] | np.ndarray,
                        proj: np.ndarray | None = None) -> None:
        """The sequential half of :meth:`update`, for one row of each of :meth:`features`."""
        self._alarm = False
        self.n += 1
        k = len(self._h)
        # take() on the rows: ~2x faster than fancy indexing for a handful of rows
        inc = np.add.reduce(self._table.take(self._offsets + cats, axis=0), axis=0)
        t = self._t
        t += inc[:k]  # integers held in float64: exact far beyond any threshold
        np.maximum(t, 0.0, out=t)
        self._scores += inc[k:]
        # where a statistic is back at zero, its window (and the score summed over it)
        # starts again
        zero = t == 0.0
        np.copyto(self._zero_at, self.n, where=zero)
        np.copyto(self._scores_at_zero, self._scores, where=zero)
        hit = bool((t >= self._h).any())
        if proj is not None:
            self._e = e = np.concatenate((proj, self._e, _ONE)) @ self._mean_map
            hit = hit or float(e @ e) >= self._h_mean * self._c
        if self._armed and hit:
            self._raise(self.n)
            self.channel = self.channels[self._worst()]

    def _reset_statistic(self) -> None:
        k = len(self.channels) - bool(self.smoothing)
        self._t = np.zeros(k)
        self._zero_at = np.full(k, self.n, dtype=np.int64)
        self._scores = np.zeros(k)
        self._scores_at_zero = np.zeros(k)
        if self.smoothing and self._buffer is None:
            self._e = np.zeros(len(self._inv_sd))
            self._mean_since = self.n

    # -- what an alarm carries -------------------------------------------------------
    def _fractions(self) -> np.ndarray:
        """Every channel's statistic as a fraction of its threshold, the mean channel last."""
        if not self.smoothing:
            return self._t / self._h
        return np.append(self._t / self._h, float(self._e @ self._e) / self._c / self._h_mean)

    def _worst(self) -> int:
        return int(np.argmax(self._fractions()))

    @property
    def statistic(self) -> float:
        """The largest channel statistic as a fraction of its threshold (alarm at 1)."""
        if self._buffer is not None:
            return 0.0
        return float(self._fractions().max())

    @property
    def threshold(self) -> float:
        return 1.0

    @property
    def window(self) -> int:
        """Updates since the leading channel's statistic last left zero (the mean
        channel: its EWMA's equivalent window, or the updates since its reset if fewer)."""
        if self._buffer is not None:
            return 0
        j = self._worst()
        if j == len(self._t):
            return int(min(self.n - self._mean_since, round(2 / self.smoothing - 1)))
        return int(self.n - self._zero_at[j])

    @property
    def mean_before(self) -> float:
        """The leading channel's score on the reference: a cell's rate, 0.5 for a view's
        mean quantile (``:up``/``:down``) or distance from the median
        (``:narrows``/``:widens``, in quantiles times 2), 0 for the mean channel (the
        reference's distance from its own mean)."""
        if self._buffer is not None:
            return math.nan
        j = self._worst()
        return 0.0 if j == len(self._t) else float(self._mean_before[j])

    @property
    def mean_after(self) -> float:
        """The same score averaged over the leading channel's ``window`` (the mean
        channel: the recent mean's distance from the reference's, in standard deviations
        of the whitened subspace)."""
        w = self.window
        j = self._worst()
        if j == len(self._t):
            return float(np.sqrt(self._e @ self._e))
        return float((self._scores[j] - self._scores_at_zero[j]) / w) if w else math.nan

    @property
    def details(self) -> dict[str, str]:
        leading = self.channel or (self.channels[self._worst()] if self.channels else "")
        return {"reference_version": self.reference_version, "ert": f"{self.ert:g}",
                "channel": leading}
