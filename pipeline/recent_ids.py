"""The trace ids a worker stored recently, to count (and skip) producers' duplicates.

ClickHouse keeps one row per ``trace_id`` anyway (ReplacingMergeTree, read with FINAL);
this window is what lets a duplicate be *counted*, and keeps it out of the detectors and
the sampler, where it would count twice. Two generations of at most ``size`` ids each:
memory is bounded (about 100 bytes per id), and an id is remembered for between ``size``
and ``2 * size`` traces after it was last seen.

>>> recent = RecentIds(size=2)
>>> [recent.seen(t) for t in ["a", "b", "a", "c", "d", "a"]]
[False, False, True, False, False, True]
>>> [recent.seen(t) for t in ["e", "f", "g", "b"]]  # b was last seen 6 ids ago: forgotten
[False, False, False, False]
"""

from __future__ import annotations


class RecentIds:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self._current: set[str] = set()
        self._previous: set[str] = set()

    def seen(self, trace_id: str) -> bool:
        """True if ``trace_id`` is in the window; remembers it either way."""
        if trace_id in self._current:
            return True
        found = trace_id in self._previous
        if len(self._current) >= self.size:
            self._previous, self._current = self._current, set()
        self._current.add(trace_id)
        return found
