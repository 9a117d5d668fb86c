"""Input drift on embeddings: categorical CUSUMs over a PCA sketch of a reference set."""

from __future__ import annotations

import contextlib
import math

import numpy as np

from detectors.calibration import calibrated_chain
from detectors.lifecycle import Episodes, version_of
from detectors.snapshot import PickleSnapshot


def _one_blas_thread() -> contextlib.AbstractContextManager[object]:
    # Measured on the shared 2-core box: OpenBLAS's threads fighting other processes made
    # one fit take 9-28 s instead of 0.5 s on one thread. The matrices are small (384 x
    # 384, ~500-state chains), so one thread is also the fastest when the box is idle.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn (via evidently) brings it
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    mu = x.mean(axis=0)
    centred = x - mu
    # eigh of the d x d scatter matrix, not an SVD of the n x d data: 10x cheaper at 1,000
    # x 384, and only the top k directions are kept anyway
    evals, evecs = np.linalg.eigh(centred.T @ centred)
    # at least half the dimensions stay outside the subspace, so the residual term has
    # something to measure
    k = max(1, min(k, len(evals) // 2))
    top = np.argsort(evals)[::-1][:k]
    sd = np.sqrt(np.maximum(evals[top], 1e-24) / max(len(x) - 1, 1))
    basis = evecs[:, top].copy()  # (d, k)
    proj = centred @ basis
    resid = np.einsum("ij,ij->i", centred, centred) - np.einsum("ij,ij->i", proj, proj)
    return mu, basis, sd, max(float(resid.mean()), 1e-12)


def _novelty(x: np.ndarray, mu: np.ndarray, basis: np.ndarray, sd: np.ndarray,
             resid_mean: float) -> np.ndarray:
    """Hotelling's T^2 in the principal subspace plus the residual (Q) outside it, each
    scaled to mean ~1 on the reference, so a point is novel in either way."""
    centred = x - mu
    proj = centred @ basis
    t2 = ((proj / sd) ** 2).sum(axis=1) / len(sd)
    q = np.einsum("ij,ij->i", centred, centred) - np.einsum("ij,ij->i", proj, proj)
    return t2 + q / resid_mean


def _kmeans(z: np.ndarray, k: int, rng: np.random.Generator, iters: int = 25) -> np.ndarray:
    # k-means++ seeding, then Lloyd; a few dozen iterations on 1,000 points cost ~10 ms
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


class EmbeddingDrift(Episodes, PickleSnapshot):
    """Multivariate input drift against a reference set of embeddings, calibrated to an ERT.

    Fit (once per reference, ~0.1 s for 1,000 x 384): the reference's mean and top
    ``components`` principal directions; a novelty score per point (Hotelling's T^2
    in that subspace plus the residual outside it); the ``1 - alpha`` quantile of that
    score taken from *out-of-fold* scores (5-fold cross-fitting, so the quantile is
    that of unseen points, not of the points the PCA was fitted on); and ``cells``
    k-means cells in the whitened subspace.

    Each update maps a vector to one of ``cells + 1`` categories: "novel" (score above
    the quantile) or its nearest cell. Without drift the categories are multinomial
    with the reference's frequencies, so each category gets an upward Bernoulli CUSUM
    for its rate doubling (``ratio``), calibrated exactly by its Markov chain to an ARL
    of ``ert * (cells + 1)``: the first of ``cells + 1`` nearly independent, nearly
    geometric run lengths then has a mean close to ``ert``. A new intent shows as a
    rise of the "novel" rate, a surge of known intents as a rise of their cells' rates.
    An update is one (d x k) projection and a few small vector operations.

    Assumptions: the stream's vectors are exchangeable with the reference under no
    change (same embedder, same population); the calibration is conditional on the
    reference's estimated category frequencies (about 1,000 points keep that error
    within the 25 % the tests allow; 300 points do not).

    >>> rng = np.random.default_rng(0)
    >>> basis = rng.normal(size=(8, 64))
    >>> reference = rng.normal(size=(1000, 8)) @ basis + 0.3 * rng.normal(size=(1000, 64))
    >>> detector = EmbeddingDrift(reference, ert=20_000, cells=8, seed=0)
    >>> detector.threshold
    1.0
    >>> new_topic = rng.normal(size=64) * 2.0
    >>> alarms = []
    >>> for i in range(1500):
    ...     x = rng.normal(size=8) @ basis + 0.3 * rng.normal(size=64)
    ...     if i >= 500 and rng.random() < 0.10:  # a new topic, 10 % of traffic
    ...         x = new_topic + 0.3 * rng.normal(size=64)
    ...     detector.update(x)
    ...     if detector.drift_detected:
    ...         alarms.append(i)
    >>> len(alarms), 500 <= alarms[0] < 900, detector.channel
    (1, True, 'novel')
    >>> clone = EmbeddingDrift.from_state(detector.state())
    >>> clone.reference_version == detector.reference_version
    True
    """

    name = "embedding_cusum"

    def __init__(
        self,
        reference: np.ndarray | None = None,
        *,
        ert: float = 2000.0,
        components: int = 32,
        cells: int = 16,
        alpha: float = 0.05,
        ratio: float = 2.0,
        warmup: int = 1000,
        seed: int = 0,
        reference_version: str | None = None,
    ) -> None:
        if ert <= 1:
            raise ValueError(f"ert must be > 1 update, got {ert}")
        if not 0 < alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
        self.ert = float(ert)
        self.components = components
        self.cells = cells
        self.alpha = alpha
        self.ratio = ratio
        self.warmup = warmup
        self.seed = seed
        self.n = 0
        self.reference_version = "warmup"
        self._buffer: list[np.ndarray] | None = []
        self.channel = ""
        self._t = [0] * (cells + 1)
        if reference is not None:
            self.set_reference(reference, version=reference_version)

    # -- reference -------------------------------------------------------------------
    def set_reference(self, reference: np.ndarray, *, version: str | None = None) -> None:
        """Fit the sketch and recalibrate against ``reference`` (n x d); re-arms."""
        with _one_blas_thread():
            self._fit(np.asarray(reference, dtype=np.float64), version)

    def _fit(self, x: np.ndarray, version: str | None) -> None:
        if x.ndim != 2 or len(x) < 10 * (self.cells + 1):
            raise ValueError(f"reference must be (n, d) with n >= {10 * (self.cells + 1)}")
        rng = np.random.default_rng(self.seed)
        # out-of-fold novelty scores: what unseen reference-like points score
        folds = rng.permutation(len(x)) % 5
        oof = np.empty(len(x))
        for f in range(5):
            fit = _pca(x[folds != f], self.components)
            oof[folds == f] = _novelty(x[folds == f], *fit)
        self._mu, basis, self._sd, self._resid_mean = _pca(x, self.components)
        self._cut = float(np.quantile(oof, 1.0 - self.alpha))
        z = ((x - self._mu) @ basis) / self._sd
        self._centres = _kmeans(z, self.cells, rng)
        lab = np.argmin(((z[:, None, :] - self._centres[None]) ** 2).sum(axis=2), axis=1)
        lab[oof > self._cut] = self.cells
        counts = np.bincount(lab, minlength=self.cells + 1).astype(float)
        self.p0 = (counts + 0.5) / (counts.sum() + 0.5 * len(counts))
        # fold the whitening into the basis (one matmul per update gives z), and the
        # novelty score into one weight vector: score = (z*z) @ w + |x - mu|^2 / resid_mean
        self._wbasis = basis / self._sd
        self._score_w = 1.0 / len(self._sd) - self._sd**2 / self._resid_mean
        self._half_c2 = 0.5 * (self._centres**2).sum(axis=1)
        # Each category's rate is an estimate from n reference points, and the run
        # length of the first of several CUSUMs is ruled by the channels whose rate was
        # underestimated (1 / ARL is convex in the rate error). So we aim for the ERT
        # *averaged over that estimation error* (3-point Gauss-Hermite over a binomial
        # standard error), not the ERT at the point estimate, which falls ~25 % short.
        chains = [None] * len(self.p0)
        target = self.ert * (self.cells + 1)
        for _ in range(2):
            ups, downs, hs, cs = [], [], [], []
            inv_arl = 0.0
            for j, p in enumerate(self.p0):
                chain, h = calibrated_chain(p, min(self.ratio * p, (1 + p) / 2), target)
                chains[j] = chain
                se = math.sqrt(p * (1 - p) / len(x))
                nodes = [(2 / 3, p)] + [(1 / 6, min(max(p + s3 * se, 1e-6), 0.999))
                                        for s3 in (-math.sqrt(3), math.sqrt(3))]
                inv_arl += sum(w / chain.arl(q, h) for w, q in nodes)
                ups.append(chain.up)
                downs.append(chain.down)
                hs.append(h)
                cs.append(chain.c)
            predicted = 1.0 / inv_arl
            if abs(predicted / self.ert - 1.0) < 0.05:
                break
            target *= self.ert / predicted
        self.predicted_ert = predicted
        # plain lists: for nine small integers a Python loop beats numpy's per-call cost
        self._up, self._down, self._h, self._c = ups, downs, hs, cs
        self._hits = [0] * (self.cells + 1)
        self._zero_at = [0] * (self.cells + 1)
        self._buffer = None
        self.reference_version = version or version_of(x)
        self.acknowledge()

    @property
    def calibrated(self) -> bool:
        return self._buffer is None

    # -- updates ---------------------------------------------------------------------
    def category(self, x: np.ndarray) -> int:
        """The category of one vector: a cell index, or ``cells`` for "novel"."""
        centred = x - self._mu
        z = centred @ self._wbasis
        if (z * z) @ self._score_w + (centred @ centred) / self._resid_mean > self._cut:
            return self.cells
        return int(np.argmax(self._centres @ z - self._half_c2))

    def is_novel(self, x: np.ndarray) -> bool:
        """Whether one vector lies outside the reference (its "novel" category)."""
        return self.category(np.asarray(x, dtype=np.float64)) == self.cells

    def categories(self, x: np.ndarray) -> np.ndarray:
        """:meth:`category` of each row of ``x`` at once (for batches and benchmarks)."""
        centred = np.asarray(x, dtype=np.float64) - self._mu
        z = centred @ self._wbasis
        score = (z * z) @ self._score_w + np.einsum("ij,ij->i", centred, centred) / self._resid_mean
        cat = np.argmax(z @ self._centres.T - self._half_c2, axis=1)
        cat[score > self._cut] = self.cells
        return cat

    def update(self, x: np.ndarray) -> None:  # type: ignore[override]
        self._alarm = False
        v = np.asarray(x, dtype=np.float64)
        if self._buffer is not None:
            # float16: 1,000 x 384 buffered vectors snapshot to 0.77 MB, under Kafka's
            # default 1 MB message limit for the changelog; PCA does not need more digits
            self._buffer.append(v.astype(np.float16))
            if len(self._buffer) >= self.warmup:
                self.set_reference(np.stack(self._buffer).astype(np.float64))
            return
        self.update_category(self.category(v))

    def update_category(self, cat: int) -> None:
        """The sequential half of :meth:`update`, for a category computed beforehand."""
        self._alarm = False
        self.n += 1
        n = self.n = self.n + 1
        t, down, hits, zero_at = self._t, self._down, self._hits, self._zero_at
        alarm = False
        for j in range(len(t)):
            if j == cat:
                t[j] += self._up[j]
                hits[j] += 1
                alarm = alarm or t[j] >= self._h[j]
            else:
                v = t[j] - down[j]
                if v <= 0:
                    t[j] = 0
                    zero_at[j] = n
                    hits[j] = 0
                else:
                    t[j] = v
        if alarm and self._armed:
            self._raise(n)
            self.channel = self._name(self._worst())

    def _name(self, j: int) -> str:
        return "novel" if j == self.cells else f"cell{j}"

    def _reset_statistic(self) -> None:
        k = len(self._t)
        self._t = [0] * k
        self._zero_at = [self.n] * k
        self._hits = [0] * k

    # -- what an alarm carries -------------------------------------------------------
    def _worst(self) -> int:
        return max(range(len(self._t)), key=lambda j: self._t[j] / self._h[j])

    @property
    def statistic(self) -> float:
        """The largest category statistic as a fraction of its threshold (alarm at 1)."""
        if self._buffer is not None:
            return 0.0
        return max(t / h for t, h in zip(self._t, self._h, strict=True))

    @property
    def threshold(self) -> float:
        return 1.0

    @property
    def window(self) -> int:
        j = self._worst()
        return int(self.n - self._zero_at[j]) if self._buffer is None else 0

    @property
    def mean_before(self) -> float:
        """Reference frequency of the category that leads (the alarm's, at an alarm)."""
        return float(self.p0[self._worst()]) if self._buffer is None else math.nan

    @property
    def mean_after(self) -> float:
        j = self._worst()
        w = self.n - self._zero_at[j] if self._buffer is None else 0
        return float(self._hits[j] / w) if w else math.nan

    @property
    def details(self) -> dict[str, str]:
        return {"reference_version": self.reference_version, "ert": f"{self.ert:g}",
                "channel": self.channel or self._name(self._worst())}

