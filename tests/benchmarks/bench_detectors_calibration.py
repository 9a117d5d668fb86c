"""Measured mean run length without change vs configured ERT, for the README's table.

    .venv/bin/python tests/benchmarks/bench_detectors_calibration.py

Each run starts a detector fresh (acknowledged) on a no-change stream and counts updates
to its first alarm. ``EmbeddingDrift`` is calibrated for the run length *averaged over the
reference's sampling error*, so its runs are spread over 10 references (20 runs each):
synthetic Gaussian embeddings, and BANKING77 (1,000 random texts of the 40 known intents as
the reference, the other texts of those intents as the stream, the default embedder as in the
detect-suite).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from detectors.embedding import EmbeddingDrift
from detectors.rate import BernoulliCusum
from tests.benchmarks.machine import describe


def rate_runs(p0: float, ert: int, runs: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(runs):
        det = BernoulliCusum(p0, ert=ert)
        for i, b in enumerate((rng.random(30 * ert) < p0).tolist()):
            det.update(b)
            if det.drift_detected:
                out.append(i + 1)
                break
    return out


def run_lengths(det: EmbeddingDrift, draw: Callable[[int], np.ndarray], runs: int) -> list[int]:
    out = []
    for _ in range(runs):
        det.acknowledge()
        seen, done = 0, False
        while not done:
            # features in vectorised chunks, the sequential statistics update by update:
            # the same code path as update(), with the projection batched
            cats, steps = det.features(draw(2000))
            for i, row in enumerate(cats):
                seen += 1
                det.update_features(row, None if steps is None else steps[i])
                if det.drift_detected:
                    out.append(seen)
                    done = True
                    break
    return out


def synthetic(ert: int, dim: int, cells: int, refs: int = 10, per_ref: int = 20) -> list[int]:
    out = []
    for r in range(refs):
        rng = np.random.default_rng(1000 + r)
        basis = rng.normal(size=(8, dim))

        def draw(n: int, rng: np.random.Generator = rng, basis: np.ndarray = basis) -> np.ndarray:
            return rng.normal(size=(n, 8)) @ basis + 0.5 * rng.normal(size=(n, dim))
        det = EmbeddingDrift(draw(1000), ert=ert, cells=cells, seed=r)
        out += run_lengths(det, draw, per_ref)
    return out


def banking77(ert: int, cells: int, refs: int = 10, per_ref: int = 20) -> list[int]:
    from pipeline.bench.scenarios import Banking77

    b77 = Banking77(0)
    known = np.r_[b77.reference_rows, b77.pool]
    out = []
    for r in range(refs):
        rng = np.random.default_rng(r)
        rows = rng.permutation(known)
        live = rows[1000:]

        def draw(n: int, rng: np.random.Generator = rng, live: np.ndarray = live) -> np.ndarray:
            return b77.vectors[rng.choice(live, size=n)]
        det = EmbeddingDrift(b77.vectors[rows[:1000]], ert=ert, cells=cells, seed=r)
        out += run_lengths(det, draw, per_ref)
    return out


def main() -> None:
    print("machine:", describe())
    print("| detector | data | configured ERT | runs | mean run length | ratio | seconds |")
    print("|---|---|---|---|---|---|---|")

    def row(name: str, data: str, ert: int, fn: Callable[[], list[int]]) -> None:
        t = time.perf_counter()
        runs = fn()
        print(f"| {name} | {data} | {ert} | {len(runs)} | {np.mean(runs):.0f} | "
              f"{np.mean(runs) / ert:.2f} | {time.perf_counter() - t:.1f} |", flush=True)

    for ert in (500, 2000):
        for p0 in (0.03, 0.2):
            row(f"BernoulliCusum(p0={p0})", "Bernoulli", ert,
                lambda p0=p0, ert=ert: rate_runs(p0, ert, 300, ert))
        for cells in (0, 16):
            name = "EmbeddingDrift()" if not cells else f"EmbeddingDrift(cells={cells})"
            for dim in (64, 32):
                row(name, f"Gaussian, d={dim}, 10 refs x 20", ert,
                    lambda ert=ert, dim=dim, cells=cells: synthetic(ert, dim, cells))
            row(name, "BANKING77, 10 refs x 20", ert,
                lambda ert=ert, cells=cells: banking77(ert, cells))


if __name__ == "__main__":
    with threadpool_limits(1):
        main()
