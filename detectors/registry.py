"""Detectors per (segment, signal), created on first use and snapshotted per segment."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import datetime

import numpy as np

from detectors.base import DriftDetector
from schemas.events import DriftEvent


class SegmentRegistry:
    """Holds one detector per (segment, signal) and turns alarms into :class:`DriftEvent`.

    >>> from datetime import UTC, datetime
    >>> from detectors.adwin import Adwin
    >>> registry = SegmentRegistry({"refusal": Adwin})
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> events = [e for i in range(3000)
    ...           if (e := registry.update("bot|m", "refusal", float(i >= 1500 and i % 2 == 0),
    ...                                    trace_id=f"t{i}", ts=now))]
    >>> events[0].segment, events[0].signal, events[0].mean_after > events[0].mean_before
    ('bot|m', 'refusal', True)
    >>> clone = SegmentRegistry({"refusal": Adwin})
    >>> clone.restore("bot|m", registry.snapshot("bot|m"))
    >>> clone.segments()
    ['bot|m']

    Calibrated detectors raise one alarm per episode and re-arm on acknowledgement:

    >>> from functools import partial
    >>> from detectors.rate import BernoulliCusum
    >>> flags = SegmentRegistry({"flag": partial(BernoulliCusum, 0.02, ert=5000)})
    >>> events = [e for i in range(2000)
    ...           if (e := flags.update("bot|m", "flag", float(i % 3 == 0), trace_id=f"t{i}",
    ...                                 ts=now))]
    >>> len(events), events[0].details["reference_version"] != ""
    (1, True)
    >>> flags.acknowledge("bot|m")
    ['flag']
    """

    def __init__(self, factories: dict[str, Callable[[], DriftDetector]]) -> None:
        self._factories = factories
        self._detectors: dict[str, dict[str, DriftDetector]] = {}

    def __contains__(self, segment: str) -> bool:
        return segment in self._detectors

    def segments(self) -> list[str]:
        return sorted(self._detectors)

    def _for(self, segment: str) -> dict[str, DriftDetector]:
        found = self._detectors.get(segment)
        if found is None:
            found = self._detectors[segment] = {}
        return found

    def update(
        self, segment: str, signal: str, value: float | np.ndarray, *, trace_id: str,
        ts: datetime,
    ) -> DriftEvent | None:
        detectors = self._for(segment)
        detector = detectors.get(signal)
        if detector is None:
            detector = detectors[signal] = self._factories[signal]()
        detector.update(value)  # type: ignore[arg-type]  # embeddings take a vector
        if not detector.drift_detected:
            return None
        details = dict(getattr(detector, "details", {}))
        return DriftEvent(
            detected_at=ts,
            segment=segment,
            detector=detector.name,
            signal=signal,
            trace_id=trace_id,
            statistic=detector.statistic,
            threshold=detector.threshold,
            mean_before=getattr(detector, "mean_before", float("nan")),
            mean_after=getattr(detector, "mean_after", float("nan")),
            window=int(getattr(detector, "window", getattr(detector, "cut_width", 0))),
            details=details,
        )

    def detector(self, segment: str, signal: str) -> DriftDetector | None:
        """The live detector of (segment, signal), or None if it has seen nothing yet."""
        return self._detectors.get(segment, {}).get(signal)

    def acknowledge(self, segment: str, signal: str | None = None) -> list[str]:
        """Close the open alarm episode(s) of a segment (``driftline drift ack``).

        Returns the signals whose detector was re-armed. Detectors without an alarm
        lifecycle (ADWIN forgets its old window by itself after an alarm) are skipped.
        """
        done = []
        for name, det in self._detectors.get(segment, {}).items():
            if (signal is None or name == signal) and hasattr(det, "acknowledge"):
                det.acknowledge()
                done.append(name)
        return sorted(done)

    def snapshot(self, segment: str) -> bytes:
        return pickle.dumps(
            {signal: d.state() for signal, d in self._detectors.get(segment, {}).items()}
        )

    def restore(self, segment: str, blob: bytes) -> None:
        states: dict[str, bytes] = pickle.loads(blob)
        restored: dict[str, DriftDetector] = {}
        for signal, state in states.items():
            factory = self._factories.get(signal)
            if factory is None:
                continue  # a signal this version no longer watches
            restored[signal] = type(factory()).from_state(state)
        self._detectors[segment] = restored

    def forget(self, segment: str) -> None:
        self._detectors.pop(segment, None)
