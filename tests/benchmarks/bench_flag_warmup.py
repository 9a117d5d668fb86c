"""What a warm-up's estimate of the reference rate does to a Bernoulli CUSUM's ERT.

    .venv/bin/python tests/benchmarks/bench_flag_warmup.py

For each (true rate, warm-up length, ERT): every warm-up count the binomial can give
(probability > 1e-6), weighted by its probability; per count, the threshold calibrated at
the estimate alone and averaged over the estimate's error (``sample=``), and the exact
run length and detection delay (rate doubled) of each at the true rate, from the chain.
"Run length across segments" is 1 / the false-alarm rate averaged over warm-ups.
Exact, no simulation: ~20 s.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.stats import binom

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from detectors.calibration import calibrated_chain
from tests.benchmarks.machine import describe

CASES = [(0.031, 2000, 100_000), (0.031, 2000, 20_000), (0.03, 500, 2000),
         (0.1, 2000, 20_000), (0.01, 2000, 100_000)]


def main() -> None:
    print(describe())
    print("| true rate | warm-up | ERT | run length across segments: at the estimate | "
          "averaged over its error | median delay at 2x rate: at the estimate | averaged |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for p, warmup, ert in CASES:
        counts = np.arange(binom.ppf(1e-6, warmup, p), binom.ppf(1 - 1e-6, warmup, p) + 1)
        weights = binom.pmf(counts, warmup, p)
        weights /= weights.sum()
        run_length, delay = {}, {}
        for mode in ("estimate", "posterior"):
            rates, delays = [], []
            for ones in counts.astype(int).tolist():
                q0 = (ones + 0.5) / (warmup + 1)
                sample = (ones, warmup) if mode == "posterior" else None
                chain, h = calibrated_chain(q0, 2 * q0, ert, sample=sample)
                rates.append(1 / chain.arl(p, h))
                delays.append(chain.arl(2 * p, h))
            run_length[mode] = 1 / float(weights @ np.array(rates))
            order = np.argsort(delays)
            cum = np.cumsum(weights[order])
            delay[mode] = float(np.array(delays)[order][np.searchsorted(cum, 0.5)])
        print(f"| {p} | {warmup:,} | {ert:,} | {run_length['estimate']:,.0f} "
              f"({run_length['estimate'] / ert:.2f}) | {run_length['posterior']:,.0f} "
              f"({run_length['posterior'] / ert:.2f}) | {delay['estimate']:,.0f} | "
              f"{delay['posterior']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
