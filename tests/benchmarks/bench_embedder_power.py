"""Which embedder should be the default? Detection power per CPU second, measured.

    .venv/bin/python tests/benchmarks/bench_embedder_power.py [--embedders static,hashing,minilm]
        [--runs 40] [--ert 2000]

Per embedder (``DRIFTLINE_EMBEDDER`` specs, built by ``make_embedder`` as the worker builds
them):

- **texts/s and CPU ms/text**: BANKING77 texts (a fixed seeded sample, the same for every
  embedder) embedded in batches with BLAS allowed both cores; CPU is the process's CPU
  time (all threads) per text, so a multi-threaded embedder pays for every core it uses.
  ``+ detector`` adds one ``EmbeddingDrift.update`` at the embedder's dimension (CPU per
  update, one thread).
- **detection**: the detect-suite's embedding scenarios (same seeds, same streams, same
  reference rows; all 13,083 texts embedded by each embedder, cached per embedder) with
  driftline's embedding detector. Each embedder's detector runs at the lowest ERT whose
  false-alarm rate *measured* on the no-change streams is no higher than ``1e5 / ert`` per
  100k (ERT 2,000: 50), so every embedder is compared at the same measured false-alarm
  rate or below.
- **power per CPU second** = 1 / (median delay x CPU seconds per text): changes detected
  per CPU second spent embedding (and detecting) the traffic that arrives after the
  change; the summary is its geometric mean over the change scenarios (0 if one is
  missed in most runs).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from detectors.embedding import EmbeddingDrift
from pipeline.bench.embedding import embedder_for
from pipeline.bench.report import Outcome, fmt
from pipeline.bench.scenarios import Banking77, scenarios
from pipeline.bench.suite import OURS, Suite
from tests.benchmarks.machine import describe

#: the change scenarios' names in the table
SHORT = {"new intent at 5%": "5 %", "new intent at 10%": "10 %", "new intent at 30%": "30 %",
         "new intent 0 to 30 % (gradual)": "ramp 0-30 %", "card family surges": "card surge"}
#: texts timed per embedder: enough for a stable rate, few enough for MiniLM (~35/s)
TIMED = {"minilm": 300}
TIMED_DEFAULT = 3000


class _Quiet:
    """The suite's progress interface, silent: this benchmark prints its own lines."""

    def add_task(self, *_: object, **__: object) -> int:
        return 0

    def advance(self, *_: object, **__: object) -> None:
        return None


def throughput(spec: str, texts: list[str]) -> tuple[float, float, float]:
    """(texts/s, CPU ms/text, seconds to load) of embedder ``spec`` on ``texts``."""
    t = time.perf_counter()
    embed = embedder_for(spec)
    embed(texts[:32])  # first call pays lazy set-up (tokenizer tables, BLAS threads)
    load = time.perf_counter() - t
    with threadpool_limits(2):
        c0, t0 = time.process_time(), time.perf_counter()
        embed(texts)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return len(texts) / wall, 1000 * cpu / len(texts), load


def detector_cpu_ms(reference: np.ndarray, stream: np.ndarray) -> float:
    det = EmbeddingDrift(reference)
    c0 = time.process_time()
    for x in stream:
        det.update(x)
        if det.drift_detected:
            det.acknowledge()
    return 1000 * (time.process_time() - c0) / len(stream)


def detection(spec: str, runs: int, ert: float, seed: int
              ) -> tuple[Outcome, str, list[Outcome], Banking77]:
    """The control at the matched configuration, its name, and each change scenario."""
    b77 = Banking77(seed, spec)
    scens = [sc for sc in scenarios(b77, quick=False) if sc.signal == "embedding"]
    control = next(sc for sc in scens if sc.change_at < 0)
    suite = Suite(ert=ert, n_runs=runs, seed=seed, progress=_Quiet())
    tried: dict[str, Outcome] = {}
    base = suite.native(control, f"{OURS}@{ert:g}", 0)
    tried[base.detector] = base
    name = suite.lowest_ert(control, 1e5 / ert, ert, ert, tried, 0)
    changes = [suite.native(sc, name, 0) for sc in scens if sc.change_at >= 0]
    return tried[name], name, changes, b77


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--embedders", default="static,hashing,minilm")
    ap.add_argument("--runs", type=int, default=40, help="runs per scenario")
    ap.add_argument("--ert", type=float, default=2000.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print("machine:", describe())
    print("note: 2 cores shared with other jobs; rates vary run to run")
    rows = []
    for spec in a.embedders.split(","):
        t = time.perf_counter()
        with threadpool_limits(1):
            control, name, changes, b77 = detection(spec, a.runs, a.ert, a.seed)
        detect_s = time.perf_counter() - t
        texts = [b77.texts[i] for i in np.random.default_rng(a.seed).permutation(
            len(b77.texts))[: TIMED.get(spec, TIMED_DEFAULT)]]
        rate, cpu_ms, load = throughput(spec, texts)
        with threadpool_limits(1):
            det_ms = detector_cpu_ms(b77.reference, b77.vectors[b77.pool[:5000]])
        per_text_s = (cpu_ms + det_ms) / 1000
        medians = [o.delay_q(0.5) for o in changes]
        powers = [1 / (m * per_text_s) if math.isfinite(m) and m > 0 else 0.0
                  for m in medians]
        geo = math.exp(np.mean(np.log(powers))) if all(powers) else 0.0
        # the same without the detector's cost: the embedder's share alone
        geo_embed = geo * per_text_s / (cpu_ms / 1000)
        rows.append((spec, b77.vectors.shape[1], rate, cpu_ms, det_ms, name, control,
                     changes, geo, geo_embed))
        print(f"{spec}: {len(texts):,} texts timed ({load:.1f} s to load), detection runs "
              f"{detect_s:.0f} s, matched at {name}", flush=True)
    scen_names = [o.scenario for o in rows[0][7]]
    headers = (["embedder", "dims", "texts/s (2 cores)", "CPU ms/text", "detector CPU ms",
                "ERT matched", "false alarms / 100k"]
               + [f"median delay, {SHORT.get(s, s)}" for s in scen_names]
               + ["changes detected / CPU s", "(embedding CPU only)"])
    print()
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for spec, dims, rate, cpu_ms, det_ms, name, control, changes, geo, geo_embed in rows:
        cells = [f"`{spec}`", str(dims), fmt(rate), f"{cpu_ms:.3f}", f"{det_ms:.3f}",
                 name.split("@")[1], fmt(control.fa_per_100k, 1)]
        cells += [f"{fmt(o.delay_q(0.5))} ({sum(math.isfinite(d) for d in o.delays)}/"
                  f"{o.runs})" for o in changes]
        cells += [f"{geo:,.1f}", f"{geo_embed:,.1f}"]
        print("| " + " | ".join(cells) + " |")
    best = max(rows, key=lambda r: r[-2])
    print(f"\nhighest detection power per CPU second: `{best[0]}` "
          f"({a.runs} runs per scenario, configured ERT {a.ert:,.0f} matched to "
          f"<= {1e5 / a.ert:.0f} false alarms / 100k)")


if __name__ == "__main__":
    main()
