"""Rate drift on 0/1 signals (guardrail flags, refusals): a calibrated Bernoulli CUSUM."""

from __future__ import annotations

import math
from typing import Literal

from detectors.calibration import calibrated_chain
from detectors.lifecycle import Episodes, version_of
from detectors.snapshot import PickleSnapshot


class BernoulliCusum(Episodes, PickleSnapshot):
    """Page's CUSUM for a rise of a 0/1 rate, with its threshold set from a target ERT.

    The reference rate ``p0`` is given or estimated from the first ``warmup`` updates
    (no alarm during warm-up). The CUSUM is tuned to a change ``p0 -> p1 = ratio * p0``
    (capped at ``(1 + p0) / 2``) and its threshold is the smallest one whose in-control
    average run length is at least ``ert`` updates, computed exactly from the Markov chain
    of the integer statistic (:mod:`detectors.calibration`, milliseconds). With
    ``direction="down"`` it watches ``1 - x`` (a pass rate falling is a failure rate
    rising; ``ratio`` then applies to ``1 - p0``).

    ``statistic`` and ``threshold`` are in units of excess events: how many more 1s than
    the reference rate allows the current window holds. ``mean_before`` is the reference
    rate, ``mean_after`` the rate over ``window``, the updates since the statistic last
    left zero (CUSUM's own estimate of where the change began).

    The calibration is exact for a known ``p0``. A warm-up estimate is uncertain, and a
    rate underestimated by 10 % roughly halves the run length, so then the threshold is
    set for the false-alarm rate *averaged over that uncertainty* to be ``1 / ert``: a
    higher threshold, more so for short warm-ups (``warmup >= 20 / p0`` keeps the cost in
    detection delay small). ``min_p0`` floors the
    estimate: for rare events (guardrail flags) a warm-up that saw none would otherwise
    set a reference so low that the first few flags raise an alarm.

    >>> import random
    >>> rng = random.Random(3)
    >>> detector = BernoulliCusum(p0=0.05, ert=2000)
    >>> detector.threshold > detector.statistic == 0.0
    True
    >>> alarms = []
    >>> for i in range(6000):
    ...     detector.update(float(rng.random() < (0.05 if i < 3000 else 0.15)))
    ...     if detector.drift_detected:
    ...         alarms.append(i)
    >>> len(alarms), 3000 <= alarms[0] < 3300  # one alarm for the episode
    (1, True)
    >>> round(detector.mean_before, 2), detector.mean_after > 0.1
    (0.05, True)
    >>> detector.acknowledge()
    >>> detector.armed, detector.statistic
    (True, 0.0)
    >>> BernoulliCusum.from_state(detector.state()).threshold == detector.threshold
    True
    """

    name = "bernoulli_cusum"

    def __init__(
        self,
        p0: float | None = None,
        *,
        ert: float = 2000.0,
        ratio: float = 2.0,
        warmup: int = 500,
        min_p0: float = 0.0,
        direction: Literal["up", "down"] = "up",
        reference_version: str | None = None,
    ) -> None:
        if ert <= 1:
            raise ValueError(f"ert must be > 1 update, got {ert}")
        if ratio <= 1:
            raise ValueError(f"ratio must be > 1, got {ratio}")
        if direction not in ("up", "down"):
            raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
        self.ert = float(ert)
        self.ratio = float(ratio)
        self.warmup = int(warmup)
        if not 0 <= min_p0 < 1:
            raise ValueError(f"min_p0 must be in [0, 1), got {min_p0}")
        self.min_p0 = float(min_p0)
        self.direction = direction
        self.n = 0
        self._t = 0  # the integer statistic
        self._zero_at = 0  # update count when the statistic last was 0
        self._ones_since_zero = 0
        self._warm_n = 0
        self._warm_ones = 0
        self.p0 = math.nan
        self.p1 = math.nan
        self._c = self._up = self._down = 1
        self._h = 1 << 62
        self.reference_version = "warmup"
        if p0 is not None:
            self.set_reference(p0, version=reference_version)

    # -- reference -------------------------------------------------------------------
    def set_reference(self, p0: float, *, version: str | None = None,
                      sample: tuple[int, int] | None = None) -> None:
        """(Re)calibrate against the rate ``p0`` (of ``x``, before any ``direction`` flip).

        ``sample``: ``(ones, n)`` when ``p0`` was estimated from counts (of the watched
        value, after the flip); the ERT then holds on average over that estimate's error.
        """
        if not 0 < p0 < 1:
            raise ValueError(f"p0 must be in (0, 1), got {p0}")
        q0 = p0 if self.direction == "up" else 1.0 - p0
        q1 = min(self.ratio * q0, (1.0 + q0) / 2.0)
        chain, h = calibrated_chain(q0, q1, self.ert, sample=sample)
        self.p0, self.p1 = q0, q1
        self._c, self._up, self._down, self._h = chain.c, chain.up, chain.down, h
        self.reference_version = version or version_of(p0)
        self.acknowledge()

    @property
    def calibrated(self) -> bool:
        return not math.isnan(self.p0)

    # -- updates ---------------------------------------------------------------------
    def update(self, x: float) -> None:
        self._alarm = False
        one = x >= 0.5
        if self.direction == "down":
            one = not one
        if not self.calibrated:
            self._warm_n += 1
            self._warm_ones += one
            if self._warm_n >= self.warmup:
                # half a pseudo-count each way: a warm-up without a single 1 must not
                # yield p0 = 0, which no CUSUM can be calibrated against
                estimate = (self._warm_ones + 0.5) / (self._warm_n + 1.0)
                rate = max(estimate, self.min_p0)
                # at the floor, calibrate at the floor as if known: the floor is the
                # deliberately cautious rate, not an estimate
                sample = (self._warm_ones, self._warm_n) if estimate > self.min_p0 else None
                self.set_reference(rate if self.direction == "up" else 1.0 - rate,
                                   sample=sample)
            return
        self.n += 1
        if one:
            self._t += self._up
            self._ones_since_zero += 1
        else:
            self._t -= self._down
            if self._t <= 0:
                self._t = 0
                self._zero_at = self.n
                self._ones_since_zero = 0
        if self._armed and self._t >= self._h:
            self._raise(self.n)

    def _reset_statistic(self) -> None:
        self._t = 0
        self._zero_at = self.n
        self._ones_since_zero = 0

    # -- what an alarm carries -------------------------------------------------------
    @property
    def statistic(self) -> float:
        return self._t / self._c

    @property
    def threshold(self) -> float:
        return self._h / self._c

    @property
    def window(self) -> int:
        return self.n - self._zero_at

    @property
    def mean_before(self) -> float:
        return self.p0

    @property
    def mean_after(self) -> float:
        return self._ones_since_zero / self.window if self.window else math.nan

    @property
    def details(self) -> dict[str, str]:
        return {"reference_version": self.reference_version, "ert": f"{self.ert:g}",
                "p1": f"{self.p1:.4g}", "direction": self.direction}

