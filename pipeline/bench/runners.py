"""driftline's detectors and their peers behind one runner interface, on identical streams."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import typer

from detectors.adwin import Adwin
from detectors.embedding import EmbeddingDrift
from detectors.rate import BernoulliCusum


# --------------------------------------------------------------------------------------
# detectors behind one small runner interface
# --------------------------------------------------------------------------------------
class Runner:
    """One detector on one stream: ``step(x)`` returns True on an alarm."""

    name = ""
    driftline = False

    def step(self, x: Any) -> bool:
        raise NotImplementedError

    def trace(self) -> tuple[float, float]:
        return math.nan, math.nan


class DriftlineRunner(Runner):
    """A driftline detector; after an alarm it is acknowledged, so episodes renew."""

    driftline = True

    def __init__(self, name: str, detector: Any) -> None:
        self.name, self.det = name, detector

    def step(self, x: Any) -> bool:
        self.det.update(x)
        if self.det.drift_detected:
            if hasattr(self.det, "acknowledge"):
                self.det.acknowledge()
            return True
        return False

    def trace(self) -> tuple[float, float]:
        return float(self.det.statistic), float(self.det.threshold)


class EmbeddingRunner(DriftlineRunner):
    def step(self, x: Any) -> bool:
        self.det.update(x)
        if self.det.drift_detected:
            self.det.acknowledge()
            return True
        return False


class RiverRunner(Runner):
    """river's detectors as they are (defaults): they reset themselves after an alarm."""

    def __init__(self, name: str, detector: Any, project: Callable[[Any], float]) -> None:
        self.name, self.det, self.project = name, detector, project

    def step(self, x: Any) -> bool:
        self.det.update(self.project(x))
        return bool(self.det.drift_detected)


class EvidentlyWindowRunner(Runner):
    """An evidently drift test on a window of recent values against the reference.

    Evaluated every ``every`` updates once the window is full; after an alarm the window
    starts over, so one shift is not reported on every evaluation.
    """

    def __init__(self, name: str, test: Callable[[np.ndarray], bool], window: int,
                 every: int, project: Callable[[Any], Any]) -> None:
        self.name, self.test, self.window, self.every = name, test, window, every
        self.project = project
        self.buf: list[Any] = []
        self.n = 0

    def step(self, x: Any) -> bool:
        self.buf.append(self.project(x))
        if len(self.buf) > self.window:
            del self.buf[0]
        self.n += 1
        if len(self.buf) == self.window and self.n % self.every == 0 and self.test(
                np.asarray(self.buf)):
            self.buf.clear()
            return True
        return False


def _evidently_ks(reference: np.ndarray) -> Callable[[np.ndarray], bool]:
    import pandas as pd
    from evidently.legacy.calculations.stattests import ks_stat_test
    from evidently.legacy.core import ColumnType

    ref = pd.Series(reference)

    def test(window: np.ndarray) -> bool:
        # default threshold (p < 0.05), as evidently's reports use it
        return bool(ks_stat_test.func(ref, pd.Series(window), ColumnType.Numerical, 0.05)[1])
    return test


def _evidently_distance(reference: np.ndarray) -> Callable[[np.ndarray], bool]:
    import pandas as pd
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import distance

    method = distance(dist="euclidean", bootstrap=True)
    ref = pd.DataFrame(reference)

    def test(window: np.ndarray) -> bool:
        return bool(method(pd.DataFrame(window), ref)[1])
    return test


def pc1_projection(reference: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Vectors (one or a batch) to their coordinate on the reference's first principal
    component: the univariate view every peer without a multivariate test gets."""
    mu = reference.mean(axis=0)
    _, _, vt = np.linalg.svd(reference - mu, full_matrices=False)
    v = vt[0]
    offset = float(mu @ v)
    return lambda x: np.asarray(x) @ v - offset


def _pc1(reference: np.ndarray) -> Callable[[np.ndarray], float]:
    fn = pc1_projection(reference)
    return lambda x: float(fn(x))


DETECTORS = {
    "embedding": ("embedding_cusum", "embedding_cusum_sketch", "river_adwin",
                  "river_page_hinkley", "river_kswin",
                  "evidently_ks", "evidently_distance"),
    "judge": ("adwin", "bernoulli_cusum", "river_page_hinkley", "river_kswin", "evidently_ks"),
    "flag": ("bernoulli_cusum", "adwin", "river_page_hinkley", "river_kswin", "evidently_ks"),
    "score": ("adwin", "river_page_hinkley", "river_kswin", "evidently_ks"),
}


def make_runner(signal: str, name: str, reference: np.ndarray, *, ert: float,
                seed: int = 0, fitted: Any = None, ratio: float = 2.0) -> Runner:
    """A fresh runner of detector ``name`` for ``signal`` against ``reference``.

    ``fitted`` is a calibrated driftline detector to copy instead of refitting (the
    suite fits once per reference and starts every run from a copy of it).
    """
    from river.drift import KSWIN, PageHinkley

    if signal == "embedding":
        project: Callable[[Any], Any] = _pc1(reference)
        ref_1d = np.array([project(r) for r in reference])
    else:
        def project(x: Any) -> Any:
            return float(x)
        ref_1d = np.asarray(reference, dtype=float)
    if name.startswith("embedding_cusum"):
        # "embedding_cusum@1000": the same detector at another ERT, to compare with a
        # peer at the false-alarm rate that peer actually has
        if "@" in name:
            ert = float(name.split("@", 1)[1])
        # "embedding_cusum_sketch": the sketch's CUSUMs alone, without the mean channel
        # (the previous design), to show what the mean channel adds on the same streams
        det = copy.deepcopy(fitted) if fitted is not None else EmbeddingDrift(
            reference, ert=ert, seed=seed,
            **({"smoothing": 0.0} if name == "embedding_cusum_sketch" else {}))
        return EmbeddingRunner(name, det)
    if name == "bernoulli_cusum":
        if fitted is not None:
            return DriftlineRunner(name, copy.deepcopy(fitted))
        # a pass rate (judge) falls, a flag rate rises
        direction = "down" if signal == "judge" else "up"
        # the reference is the warm-up, as in the worker: its rate is an estimate, and
        # the threshold is calibrated over that estimate's error
        cusum = BernoulliCusum(ert=ert, ratio=ratio, direction=direction,
                               warmup=len(ref_1d))
        for v in ref_1d:
            cusum.update(float(v))
        return DriftlineRunner(name, cusum)
    if name == "adwin":
        det = Adwin()
        for v in ref_1d:  # the reference is the history ADWIN starts from
            det.update(float(v))
        return DriftlineRunner(name, det)
    if name == "river_adwin":
        from river.drift import ADWIN

        radwin = ADWIN()
        for v in ref_1d:
            radwin.update(float(v))
        return RiverRunner(name, radwin, project)
    if name == "river_page_hinkley":
        ph = PageHinkley()
        for v in ref_1d:
            ph.update(float(v))
        return RiverRunner(name, ph, project)
    if name == "river_kswin":
        return RiverRunner(name, KSWIN(seed=seed, window=list(ref_1d[-100:])), project)
    if name == "evidently_ks":
        return EvidentlyWindowRunner(name, _evidently_ks(ref_1d), 200, 50, project)
    if name == "evidently_distance":
        return EvidentlyWindowRunner(name, _evidently_distance(reference), 200, 200,
                                     lambda x: x)
    raise typer.BadParameter(f"unknown detector {name!r} for signal {signal!r}; "
                             f"choose from {', '.join(DETECTORS[signal])}")


