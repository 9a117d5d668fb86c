"""A Faust table for detector snapshots whose changelog partition the caller names.

The ingest agent works on batches that mix partitions, so "the current event" that
Faust normally uses to pick a changelog partition is the wrong one. Each segment's
snapshot goes to the partition its traces arrive on, so the state moves with the
segment when a rebalance moves that partition.
"""

from __future__ import annotations

from typing import Any

import faust


class DetectorStateTable(faust.Table):
    _partition: int | None = None

    def set_in_partition(self, partition: int, key: Any, value: Any) -> None:
        self._partition = partition
        try:
            self[key] = value
        finally:
            self._partition = None

    def partition_for_key(self, key: Any) -> int | None:
        if self._partition is not None:
            return self._partition
        return super().partition_for_key(key)
