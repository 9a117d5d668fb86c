"""ADWIN on a bounded signal, from river, with the numbers an alarm needs to be read."""

from __future__ import annotations

import math

from detectors.snapshot import PickleSnapshot


class Adwin(PickleSnapshot):
    """ADaptive WINdowing (Bifet and Gavaldà, 2007) on values in [0, 1].

    river's ``ADWIN`` keeps the window; this wrapper adds what an alarm must carry:
    the means of the part of the window that was dropped (``mean_before``) and of the
    part that was kept (``mean_after``), their distance (``statistic``) and ADWIN's
    bound for a split of that size (``threshold``). river cuts in steps, dropping the
    oldest bucket until no split is significant, so the reported split is where
    cutting stopped: its distance is often below the bound that the first cut
    exceeded. The means are the readable part; the pair is kept for comparison with
    other detectors.

    Measured on Bernoulli(0.05) streams (``tests/unit/test_adwin.py``): no false alarm in
    100,000 stationary updates at ``delta=0.002``; a jump to 0.25 is caught after
    roughly 70 to 200 updates.

    >>> import random
    >>> rng = random.Random(7)
    >>> detector = Adwin()
    >>> alarms = []
    >>> for i in range(4000):
    ...     rate = 0.05 if i < 2000 else 0.30
    ...     detector.update(1.0 if rng.random() < rate else 0.0)
    ...     if detector.drift_detected:
    ...         alarms.append(i)
    >>> len(alarms) >= 1 and 2000 <= alarms[0] < 2300
    True
    >>> detector.mean_after > detector.mean_before
    True
    >>> Adwin.from_state(detector.state()).width == detector.width
    True
    """

    name = "adwin"

    def __init__(self, delta: float = 0.002, clock: int = 32) -> None:
        if not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        # river.drift pulls in its datasets (and scikit-learn): ~2 s that a CLI call
        # which never builds a detector should not pay.
        from river.drift import ADWIN

        self.delta = delta
        self._adwin = ADWIN(delta=delta, clock=clock)
        self.mean_before = math.nan
        self.mean_after = math.nan
        self._statistic = 0.0
        self._threshold = math.inf
        self.cut_width = 0

    def update(self, x: float) -> None:
        width, total, variance = self._adwin.width, self._adwin.total, self._adwin.variance
        self._adwin.update(x)
        if self._adwin.drift_detected:
            self._record_cut(width + 1, total + x, variance)

    def _record_cut(self, width: float, total: float, variance: float) -> None:
        kept_w, kept_t = self._adwin.width, self._adwin.total
        dropped_w = width - kept_w
        self.cut_width = int(width)
        self.mean_after = kept_t / kept_w if kept_w else math.nan
        self.mean_before = (total - kept_t) / dropped_w if dropped_w else math.nan
        self._statistic = abs(self.mean_after - self.mean_before)
        # river's eps_cut at the split between the dropped and the kept part; when one
        # update makes several cuts this is the bound at the final split.
        mwl = self._adwin.min_window_length
        m_recip = 1.0 / max(dropped_w - mwl + 1, 1.0) + 1.0 / max(kept_w - mwl + 1, 1.0)
        d_prime = math.log(2.0 * math.log(max(width, 3.0)) / self.delta)
        per_item_variance = variance / max(width - 1, 1.0)  # river keeps the sum of squares
        self._threshold = (math.sqrt(2.0 * m_recip * per_item_variance * d_prime)
                           + 2.0 / 3.0 * d_prime * m_recip)

    @property
    def drift_detected(self) -> bool:
        return self._adwin.drift_detected

    @property
    def statistic(self) -> float:
        return self._statistic

    @property
    def threshold(self) -> float:
        return self._threshold

    @property
    def width(self) -> int:
        return int(self._adwin.width)

    @property
    def estimation(self) -> float:
        return float(self._adwin.estimation)

