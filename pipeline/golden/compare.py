"""Golden versus live, per segment: are live judge scores, flag rates and inputs where the
golden set says they should be?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.golden.stats import (
    DistributionShift,
    Interval,
    compare_distributions,
    proportion_difference,
    wilson,
)


@dataclass(frozen=True, slots=True)
class Cluster:
    """A group of uncovered live inputs: its size and a few members (ids and texts)."""

    size: int
    ids: list[str]
    examples: list[str]


@dataclass(frozen=True, slots=True)
class Coverage:
    """How much live traffic sits far from every golden input (cosine similarity)."""

    uncovered_fraction: float
    threshold: float
    live: int
    clusters: list[Cluster]

    @property
    def uncovered(self) -> int:
        return sum(c.size for c in self.clusters)


@dataclass(slots=True)
class SegmentComparison:
    segment: str
    judge: DistributionShift | None = None
    flag_rates: dict[str, Interval] = field(default_factory=dict)
    coverage: Coverage | None = None
    reasons: list[str] = field(default_factory=list)
    #: the signals that differ: "judge", a flag name, "coverage"
    flagged_signals: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return bool(self.reasons)


@dataclass(frozen=True, slots=True)
class CompareConfig:
    alpha: float = 0.01
    #: |Cliff's delta| below this is "negligible" (Romano et al.) and never flagged
    min_effect: float = 0.147
    min_samples: int = 30
    #: None: calibrated on the golden set (see :func:`calibrated_threshold`)
    similarity_threshold: float | None = None
    coverage_quantile: float = 0.05
    #: flagged when the share of uncovered live inputs is confidently above this
    max_uncovered: float = 0.2


DEFAULT_CONFIG = CompareConfig()


def _unit(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def calibrated_threshold(golden: np.ndarray, quantile: float = 0.05) -> float:
    """The ``quantile`` of each golden input's similarity to its nearest other golden
    input: a live input less similar than that to every golden one is as isolated as
    only ``quantile`` of the golden set itself, so about that share of live traffic
    falls below it when live and golden inputs come from the same distribution
    (measured on BANKING77 with the static embedder: 3-5 % for a 5 % quantile).

    >>> rng = np.random.default_rng(0)
    >>> round(calibrated_threshold(rng.normal(size=(200, 4))), 2)
    0.92
    """
    g = _unit(golden)
    sims = g @ g.T
    np.fill_diagonal(sims, -np.inf)
    return float(np.quantile(sims.max(axis=1), quantile))


def coverage(live: np.ndarray, golden: np.ndarray, texts: Sequence[str],
             ids: Sequence[str] | None = None, *, threshold: float,
             max_clusters: int = 5, seed: int = 0) -> Coverage:
    """Share of live embeddings whose best cosine similarity to a golden input is below
    ``threshold``, and the uncovered traffic grouped into a few clusters with examples.

    >>> rng = np.random.default_rng(0)
    >>> golden = rng.normal(size=(50, 8))
    >>> live = np.vstack([golden[:40] + 0.01, -golden[:10]])
    >>> c = coverage(live, golden, [f"q{i}" for i in range(50)], threshold=0.9)
    >>> round(c.uncovered_fraction, 2), c.uncovered, int(c.clusters[0].ids[0]) >= 40
    (0.2, 10, True)
    """
    ids = list(ids) if ids is not None else [str(i) for i in range(len(texts))]
    best = (_unit(live) @ _unit(golden).T).max(axis=1)
    far = np.flatnonzero(best < threshold)
    clusters: list[Cluster] = []
    if far.size:
        k = max(1, min(max_clusters, far.size // 10 or 1))
        from sklearn.cluster import KMeans

        labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(live[far])
        for label in np.unique(labels):
            members = far[labels == label]
            # Examples nearest the cluster's centre show what the cluster is about.
            centre = _unit(live[members].mean(axis=0, keepdims=True))
            order = members[np.argsort(-(_unit(live[members]) @ centre.T)[:, 0])]
            distinct = list(dict.fromkeys(texts[i] for i in order))
            clusters.append(Cluster(int(members.size), [ids[i] for i in order],
                                    distinct[:3]))
        clusters.sort(key=lambda c: -c.size)
    return Coverage(float(far.size / max(len(live), 1)), threshold, len(live), clusters)


def coverage_flagged(cover: Coverage, config: CompareConfig = DEFAULT_CONFIG) -> bool:
    """Is the uncovered share confidently above ``config.max_uncovered``?"""
    share = wilson(cover.uncovered, cover.live, confidence=1 - config.alpha)
    return share.low > config.max_uncovered


def compare_segment(
    segment: str,
    *,
    live_judge: Sequence[float],
    golden_judge: Sequence[float],
    live_flags: Mapping[str, tuple[int, int]],
    golden_flags: Mapping[str, tuple[int, int]],
    cover: Coverage | None = None,
    config: CompareConfig = CompareConfig(),
) -> SegmentComparison:
    """Compare one segment; ``*_flags`` map a flag name to (flagged, total).

    >>> rng = np.random.default_rng(3)
    >>> same = compare_segment("a", live_judge=rng.uniform(.6, 1, 400),
    ...     golden_judge=rng.uniform(.6, 1, 200), live_flags={"pii": (4, 400)},
    ...     golden_flags={"pii": (2, 200)})
    >>> worse = compare_segment("b", live_judge=rng.uniform(.3, .8, 400),
    ...     golden_judge=rng.uniform(.6, 1, 200), live_flags={"pii": (40, 400)},
    ...     golden_flags={"pii": (2, 200)})
    >>> same.flagged, worse.flagged, len(worse.reasons)
    (False, True, 2)
    """
    out = SegmentComparison(segment)
    if len(live_judge) >= config.min_samples and len(golden_judge) >= config.min_samples:
        shift = compare_distributions(live_judge, golden_judge)
        out.judge = shift
        worse = shift.cliffs_delta.high < -config.min_effect
        if shift.p_value < config.alpha and worse:
            out.reasons.append(f"judge scores lower than golden: Cliff's delta "
                               f"{shift.cliffs_delta} ({shift.magnitude}), p={shift.p_value:.2g}")
            out.flagged_signals.append("judge")
    for name, (k_live, n_live) in live_flags.items():
        k_gold, n_gold = golden_flags.get(name, (0, 0))
        if n_live < config.min_samples or n_gold < config.min_samples:
            continue
        diff = proportion_difference(k_live, n_live, k_gold, n_gold,
                                     confidence=1 - config.alpha)
        out.flag_rates[name] = diff
        if diff.low > 0:
            out.reasons.append(f"{name} rate above golden by {diff}")
            out.flagged_signals.append(name)
    if cover is not None:
        out.coverage = cover
        if coverage_flagged(cover, config):
            out.reasons.append(f"{cover.uncovered_fraction:.0%} of live inputs are far from "
                               f"every golden input (similarity < {cover.threshold:.2f})")
            out.flagged_signals.append("coverage")
    return out
