"""Events driftline derives from traces: per-trace scores and drift alarms."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Score:
    """One named value computed for one trace (long format, one row per score)."""

    trace_id: str
    ts: datetime
    segment: str
    name: str
    value: float
    sample_rate: float = 1.0


@dataclass(frozen=True, slots=True)
class DriftEvent:
    """A detector's alarm for one segment and one signal.

    ``event_id`` is derived from what raised it, so the same alarm replayed after a
    crash is one row in query results.
    """

    detected_at: datetime
    segment: str
    detector: str
    signal: str
    trace_id: str
    statistic: float
    threshold: float
    mean_before: float
    mean_after: float
    window: int
    details: dict[str, str] = field(default_factory=dict)

    @property
    def event_id(self) -> str:
        key = "\x1f".join((self.segment, self.detector, self.signal, self.trace_id))
        return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
