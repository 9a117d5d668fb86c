"""Measured mean run length without change vs configured ERT, for the README's table.

    /tmp/venv/bin/python tests/benchmarks/bench_detectors_calibration.py
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from detectors.embedding import EmbeddingDrift
from detectors.rate import BernoulliCusum


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


def embedding_runs(ert: int, refs: int, per_ref: int, cells: int, dim: int) -> list[int]:
    out = []
    for r in range(refs):
        rng = np.random.default_rng(1000 + r)
        basis = rng.normal(size=(8, dim))

        def draw(n: int, rng: np.random.Generator = rng, basis: np.ndarray = basis) -> np.ndarray:
            return rng.normal(size=(n, 8)) @ basis + 0.5 * rng.normal(size=(n, dim))
        det = EmbeddingDrift(draw(1000), ert=ert, cells=cells, seed=r)
        for _ in range(per_ref):
            det.acknowledge()
            seen, done = 0, False
            while not done:
                for c in det.categories(draw(2000)).tolist():
                    seen += 1
                    det.update_category(c)
                    if det.drift_detected:
                        out.append(seen)
                        done = True
                        break
    return out


def main() -> None:
    print("| detector | configured ERT | runs | mean run length | ratio | seconds |")
    print("|---|---|---|---|---|---|")
    for ert in (500, 2000):
        for p0 in (0.03, 0.2):
            t = time.perf_counter()
            runs = rate_runs(p0, ert, 300, ert)
            print(f"| BernoulliCusum(p0={p0}) | {ert} | {len(runs)} | {np.mean(runs):.0f} | "
                  f"{np.mean(runs) / ert:.2f} | {time.perf_counter() - t:.1f} |")
        for cells in (8, 16):
            t = time.perf_counter()
            runs = embedding_runs(ert, 10, 20, cells, 64)
            print(f"| EmbeddingDrift(cells={cells}), d=64, 10 refs x 20 | {ert} | {len(runs)} | "
                  f"{np.mean(runs):.0f} | {np.mean(runs) / ert:.2f} | "
                  f"{time.perf_counter() - t:.1f} |")


if __name__ == "__main__":
    with threadpool_limits(1):
        main()
