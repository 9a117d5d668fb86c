"""Footprint per segment: each detector's state and a whole segment's registry entry, and
the embedding detector's update rate and calibration time at 384 dimensions.

    .venv/bin/python tests/benchmarks/bench_detector_footprint.py

Two measures per detector, after it has seen 10,000 updates: the snapshot the changelog
stores (``len(state())``, what moves with a partition on rebalance) and the Python heap it
holds (tracemalloc: what three more of them hold, divided by three, once a first one has
paid for imports and the calibration caches that all segments share). Embeddings are
384-d, the reference 1,000 points, as in the issue's bar.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from detectors.adwin import Adwin
from detectors.calibration import _walk_arl, _walk_threshold
from detectors.embedding import EmbeddingDrift
from detectors.mean_channel import mean_channel_rates
from detectors.rate import BernoulliCusum
from detectors.registry import SegmentRegistry
from tests.benchmarks.machine import describe

DIM = 384
RNG = np.random.default_rng(0)
BASIS = RNG.normal(size=(32, DIM))


def vectors(n: int) -> np.ndarray:
    return RNG.normal(size=(n, 32)) @ BASIS + 0.5 * RNG.normal(size=(n, DIM))


REFERENCE = vectors(1000)


def measured(make: Callable[[], Any], feed: Callable[[Any], None],
             size: Callable[[Any], int] = lambda det: len(det.state())) -> tuple[int, int]:
    """(snapshot bytes, heap bytes held) of one more detector built by ``make`` and fed."""
    first = make()
    feed(first)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    more = [make() for _ in range(3)]
    for det in more:
        feed(det)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    return size(first), held // len(more)


def feed_values(values: list[float]) -> Callable[[Any], None]:
    def feed(det: Any) -> None:
        for v in values:
            det.update(v)
    return feed


def feed_vectors(xs: np.ndarray) -> Callable[[Any], None]:
    def feed(det: Any) -> None:
        for x in xs:
            det.update(x)
    return feed


def main() -> None:
    print("machine:", describe())
    flags = (RNG.random(10_000) < 0.03).astype(float).tolist()
    scores = np.clip(RNG.normal(0.7, 0.1, 10_000), 0, 1).tolist()
    stream = vectors(10_000)
    cases: list[tuple[str, Callable[[], Any], Callable[[Any], None]]] = [
        ("BernoulliCusum(p0=0.03)", partial(BernoulliCusum, 0.03), feed_values(flags)),
        ("Adwin()", Adwin, feed_values(scores)),
        ("EmbeddingDrift(reference 1,000 x 384)", partial(EmbeddingDrift, REFERENCE),
         feed_vectors(stream)),
        ("EmbeddingDrift(cells=16)", partial(EmbeddingDrift, REFERENCE, cells=16),
         feed_vectors(stream)),
        ("EmbeddingDrift(reference=None), warm-up 1,000 half full",
         partial(EmbeddingDrift, warmup=1000), feed_vectors(stream[:500])),
    ]
    print("| detector (after 10,000 updates) | snapshot bytes | heap bytes (tracemalloc) |")
    print("|---|---|---|")
    for name, make, feed in cases:
        snap, heap = measured(make, feed)
        print(f"| {name} | {snap:,} | {heap:,} |")

    def segment() -> SegmentRegistry:
        return SegmentRegistry({
            "refusal": partial(BernoulliCusum, 0.03), "pii": partial(BernoulliCusum, 0.01),
            "judge": Adwin, "embedding": partial(EmbeddingDrift, REFERENCE)})

    def feed_segment(reg: SegmentRegistry) -> None:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        for i in range(10_000):
            for signal, value in (("refusal", flags[i]), ("pii", flags[-i]),
                                  ("judge", scores[i]), ("embedding", stream[i])):
                reg.update("app|model", signal, value, trace_id=str(i), ts=now)

    # what the changelog stores for the segment: each signal's snapshot (take_dirty)
    snap, heap = measured(segment, feed_segment, lambda reg: sum(
        len(state) for _, _, state in reg.take_dirty(["app|model"])))
    print(f"| one segment's registry entry (2 flag rates, judge ADWIN, embeddings) | "
          f"{snap:,} | {heap:,} |")
    print()
    for ert in (500, 2000, 20_000):
        # cold: the chain solves are cached per process and shared by all segments, so
        # only the first detector of a process pays all of them
        _walk_arl.cache_clear()
        _walk_threshold.cache_clear()
        mean_channel_rates.cache_clear()
        start = time.perf_counter()
        det = EmbeddingDrift(REFERENCE, ert=ert)
        fit = time.perf_counter() - start
        batched = EmbeddingDrift.from_state(det.state())
        start = time.perf_counter()
        for x in stream:
            det.update(x)
        rate = len(stream) / (time.perf_counter() - start)
        # update_many, in the scoring stage's batches: one projection for the batch
        start = time.perf_counter()
        for i in range(0, len(stream), 256):
            chunk, done = stream[i: i + 256], 0
            while done < len(chunk):
                done += batched.update_many(chunk[done:])
                if batched.drift_detected:
                    batched.acknowledge()
        rate_many = len(stream) / (time.perf_counter() - start)
        start = time.perf_counter()
        EmbeddingDrift(REFERENCE, ert=ert, seed=1)
        warm = time.perf_counter() - start
        print(f"EmbeddingDrift(ert={ert:,}), 1,000 x {DIM} reference: calibration "
              f"{fit:.2f} s cold, {warm:.2f} s warm (another segment in the process), "
              f"{rate:,.0f} updates/s by update(), {rate_many:,.0f} by update_many() in "
              f"batches of 256 (one thread)")


if __name__ == "__main__":
    with threadpool_limits(1):
        main()
