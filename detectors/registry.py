"""Detectors per (segment, signal), created on first use and snapshotted per segment."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
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

    State is kept per (segment, signal): :meth:`take_dirty` returns the snapshots of the
    detectors updated since it was last called, and a registry built with a ``loader``
    restores a segment's detectors from them the first time it sees the segment.

    >>> saved = {(seg, sig): blob for seg, sig, blob in registry.take_dirty(["bot|m"])}
    >>> clone = SegmentRegistry({"refusal": Adwin},
    ...                         loader=lambda seg, sig: saved.get((seg, sig)))
    >>> clone.segments()
    []
    >>> _ = clone.update("bot|m", "refusal", 1.0, trace_id="t", ts=now)
    >>> clone.restored, clone.segments()
    (1, ['bot|m'])

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

    def __init__(self, factories: dict[str, Callable[[], DriftDetector]], *,
                 loader: Callable[[str, str], bytes | None] | None = None) -> None:
        self._factories = factories
        self._loader = loader
        self._detectors: dict[str, dict[str, DriftDetector]] = {}
        self._dirty: dict[str, set[str]] = {}
        # The worker updates from its ingest thread and its scoring stage at once.
        self._lock = threading.RLock()
        #: segments whose detectors came back from the loader
        self.restored = 0

    def __contains__(self, segment: str) -> bool:
        return segment in self._detectors

    def segments(self) -> list[str]:
        return sorted(self._detectors)

    def _for(self, segment: str) -> dict[str, DriftDetector]:
        found = self._detectors.get(segment)
        if found is None:
            found = self._detectors[segment] = self._load(segment)
        return found

    def _load(self, segment: str) -> dict[str, DriftDetector]:
        loaded: dict[str, DriftDetector] = {}
        if self._loader is None:
            return loaded
        for signal, factory in self._factories.items():
            blob = self._loader(segment, signal)
            if blob is not None:
                loaded[signal] = type(factory()).from_state(blob)
        self.restored += bool(loaded)
        return loaded

    def update(
        self, segment: str, signal: str, value: float | np.ndarray, *, trace_id: str,
        ts: datetime,
    ) -> DriftEvent | None:
        with self._lock:
            detector = self.live(segment, signal)
            if detector is None:
                return None  # a signal this registry does not watch
            detector.update(value)  # type: ignore[arg-type]  # embeddings take a vector
            self._touch(segment, signal)
            if not detector.drift_detected:
                return None
            return _event(detector, segment, signal, trace_id, ts)

    def update_many(
        self, segment: str, signal: str, values: np.ndarray, *, trace_ids: list[str],
        ts: list[datetime],
    ) -> tuple[list[DriftEvent], int]:
        """:meth:`update` with each row of ``values``, for a detector with
        ``update_many`` (the embedding detector: one projection for all the rows).
        Returns the events and how many rows were taken: fewer than given when the
        detector stopped for a deferred calibration, which the caller runs before
        passing the rest."""
        with self._lock:
            detector = self.live(segment, signal)
            if detector is None or len(values) == 0:
                return [], len(values)
            events, done = [], 0
            while done < len(values):
                taken = detector.update_many(values[done:])  # type: ignore[attr-defined]
                if taken == 0:
                    break
                done += taken
                if detector.drift_detected:
                    events.append(_event(detector, segment, signal, trace_ids[done - 1],
                                         ts[done - 1]))
                if getattr(detector, "calibration_pending", False):
                    break
            if done:
                self._touch(segment, signal)
            return events, done

    def live(self, segment: str, signal: str) -> DriftDetector | None:
        """The detector of (segment, signal), restored or created if it does not exist
        yet; None for a signal this registry does not watch."""
        with self._lock:
            factory = self._factories.get(signal)
            if factory is None:
                return None
            detectors = self._for(segment)
            detector = detectors.get(signal)
            if detector is None:
                detector = detectors[signal] = factory()
            return detector

    def _touch(self, segment: str, signal: str) -> None:
        dirty = self._dirty.get(segment)
        if dirty is None:
            dirty = self._dirty[segment] = set()
        dirty.add(signal)

    def detector(self, segment: str, signal: str) -> DriftDetector | None:
        """The live detector of (segment, signal), or None if it has seen nothing yet."""
        return self._detectors.get(segment, {}).get(signal)

    def replace(self, segment: str, signal: str, old: DriftDetector,
                new: DriftDetector) -> bool:
        """Swap in ``new`` (say, a copy calibrated in another thread) if ``old`` is still
        the live detector: a rebalance may have moved the segment away meanwhile."""
        with self._lock:
            detectors = self._detectors.get(segment)
            if detectors is None or detectors.get(signal) is not old:
                return False
            detectors[signal] = new
            self._touch(segment, signal)
            return True

    def acknowledge(self, segment: str, signal: str | None = None) -> list[str]:
        """Close the open alarm episode(s) of a segment (``driftline drift ack``).

        Returns the signals whose detector was re-armed. Detectors without an alarm
        lifecycle (ADWIN forgets its old window by itself after an alarm) are skipped.
        """
        with self._lock:
            done = []
            for name, det in self._for(segment).items():
                if (signal is None or name == signal) and hasattr(det, "acknowledge"):
                    det.acknowledge()
                    self._touch(segment, name)
                    done.append(name)
            return sorted(done)

    def take_dirty(self, segments: Iterable[str]) -> list[tuple[str, str, bytes]]:
        """(segment, signal, state) of each detector of ``segments`` updated since the last
        call. Per signal, so a large state (an embedding reference) is written only when
        its own detector moved, not with every batch of the segment's other signals."""
        with self._lock:
            out = []
            for segment in segments:
                detectors = self._detectors.get(segment, {})
                for signal in sorted(self._dirty.pop(segment, ())):
                    out.append((segment, signal, detectors[signal].state()))
            return out

    def forget(self, segment: str) -> None:
        """Drop a segment (its partition moved away): the loader brings it back if needed."""
        with self._lock:
            self._detectors.pop(segment, None)
            self._dirty.pop(segment, None)


def _event(detector: DriftDetector, segment: str, signal: str, trace_id: str,
           ts: datetime) -> DriftEvent:
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
        details=dict(getattr(detector, "details", {})),
    )
