"""The alarm lifecycle every calibrated driftline detector shares: one alarm per episode.

A CUSUM that crossed its threshold stays above it while the change lasts; re-alarming
on every update would be a stream of repeats. So an alarm *latches* the detector: it
keeps computing (the statistic is still visible) but raises nothing until the episode
is closed by :meth:`Episodes.acknowledge` (an operator's ``driftline drift ack``) or by
a new reference (``set_reference``), both of which reset the statistic and re-arm.
"""

from __future__ import annotations

import hashlib

import numpy as np


def version_of(reference: np.ndarray | float | None) -> str:
    """A short content hash, so an alarm says which reference it was measured against."""
    if reference is None:
        return "warmup"
    data = np.ascontiguousarray(np.asarray(reference, dtype=np.float64)).tobytes()
    return hashlib.blake2b(data, digest_size=6).hexdigest()


class Episodes:
    """Mixin: ``drift_detected`` is true on the one update that opened an episode."""

    _alarm: bool = False
    _armed: bool = True
    alarms: int = 0
    #: updates the detector had seen when the current episode opened (-1: none open)
    alarm_at: int = -1

    @property
    def drift_detected(self) -> bool:
        return self._alarm

    @property
    def armed(self) -> bool:
        """False between an alarm and its acknowledgement (or a new reference)."""
        return self._armed

    def _raise(self, n: int) -> None:
        self._alarm = True
        self._armed = False
        self.alarms += 1
        self.alarm_at = n

    def acknowledge(self) -> None:
        """Close the open episode: reset the statistic to zero and re-arm."""
        self._reset_statistic()
        self._armed = True
        self._alarm = False
        self.alarm_at = -1

    def _reset_statistic(self) -> None:  # pragma: no cover - every detector overrides
        raise NotImplementedError
