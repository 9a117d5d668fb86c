"""Golden-set benchmark: cases/s of a 1,000-case run against the simulator at concurrency
32 (model call + heuristics + expectations + judge call, results stored in chdb), with
peers in the same run (no judge; concurrency 1), then the golden-vs-live comparison of
two segments of 5,000 live traces each: embedding, statistics and the Evidently report's
build time.

The simulator runs in its own process, as a model endpoint would. Prints the machine
first.

Run: ``python -m tests.benchmarks.bench_golden [--cases 1000] [--live 5000] [--latency-ms 0]``
"""

from __future__ import annotations

import argparse
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.config import load_settings
from pipeline.demo_traffic import queries
from pipeline.golden.banking77 import banking77_cases
from pipeline.golden.compare import compare_segment
from pipeline.golden.comparison import embed_segments, segment_coverage
from pipeline.golden.job import run_golden
from pipeline.golden.report import SegmentData, build_report
from pipeline.golden.sources import FLAGS, Side, golden_sides
from tests.benchmarks.machine import describe

EMBEDDER_CACHE = Path.home() / ".cache" / "driftline" / "embedders"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_simulator(port: int, latency_ms: float) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.simulator", "--port", str(port),
                             "--latency-ms", str(latency_ms)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("simulator did not start within 30 s")


def live_side(segment: str, golden: Side, n: int, refusal: float, seed: int) -> Side:
    """A live window like the worker stores it: BANKING77 questions, judge scores and
    flags drawn like the golden ones, with a given refusal rate."""
    rng = random.Random(seed)
    pool = queries()
    judged = [r["judge"] for r in golden.rows if r["judge"] is not None] or [0.75]
    side = Side(segment)
    for i in range(n):
        refused = rng.random() < refusal
        row = {"id": f"{segment}-{i}", "input": pool[rng.randrange(len(pool))][0],
               "output": "", "judge": 0.0 if refused else rng.choice(judged),
               "length_ratio": rng.lognormvariate(1.0, 0.3)}
        row.update({f: 0 for f in FLAGS})
        row["refusal"] = int(refused)
        side.rows.append(row)
    side.judge = [r["judge"] for r in side.rows]
    side.flags = {f: (sum(r[f] for r in side.rows), n) for f in FLAGS}
    return side


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cases", type=int, default=1000)
    p.add_argument("--live", type=int, default=5000)
    p.add_argument("--latency-ms", type=float, default=0.0,
                   help="simulated endpoint latency per call (a real model takes 100s of ms)")
    args = p.parse_args()
    print(f"machine: {describe()}")
    port = free_port()
    sim = start_simulator(port, args.latency_ms)
    print(f"simulator latency per call: {args.latency_ms:g} ms")
    cases = banking77_cases(per_intent=-(-args.cases // 77), apps=("support-bot",))
    cases = cases[: args.cases]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            base = load_settings(data_dir=Path(tmp), web_port=1,
                                 model_base_url=f"http://127.0.0.1:{port}/v1",
                                 judge_base_url=f"http://127.0.0.1:{port}/v1",
                                 judge_model="sim-judge", judge_concurrency=32,
                                 embedder_cache_dir=EMBEDDER_CACHE)
            runs = [("concurrency 32, judge", "sim-a", cases, 32, True),
                    ("concurrency 32, no judge", "sim-n", cases, 32, False),
                    ("concurrency 1, judge (200 cases)", "sim-s", cases[:200], 1, True)]
            rates = {}
            for label, model, subset, conc, judge in runs:
                settings = base.model_copy(update={"model_name": model})
                t0 = time.perf_counter()
                outcome = run_golden(settings, subset, run_id=f"bench-{model}",
                                     concurrency=conc, judge=judge)
                total = time.perf_counter() - t0
                rates[label] = len(subset) / outcome.seconds
                print(f"golden run, {label}: {len(subset)} cases, replay+scoring "
                      f"{outcome.seconds:.2f}s = {rates[label]:.0f} cases/s; with storing "
                      f"in chdb {total:.2f}s = {len(subset) / total:.0f} cases/s; "
                      f"pass rate {outcome.verdict.pass_rate}")
            main_rate = rates["concurrency 32, judge"]
            serial = rates["concurrency 1, judge (200 cases)"]
            no_judge = rates["concurrency 32, no judge"]
            print(f"ratio concurrency 32 / concurrency 1 (judge): {main_rate / serial:.1f}x; "
                  f"the no-judge run is {no_judge / main_rate:.2f}x as fast")

            golden = golden_sides(base, "bench-sim-a")["support-bot|sim-a"]
            segments = [SegmentData(compare_segment("x", live_judge=[], golden_judge=[],
                                                    live_flags={}, golden_flags={}),
                                    golden, live_side(f"support-bot|{m}", golden, args.live,
                                                      r, s))
                        for m, r, s in (("sim-a", 0.03, 1), ("sim-b", 0.3, 2))]
            t0 = time.perf_counter()
            embed_segments(base, segments)
            t_embed = time.perf_counter() - t0
            t0 = time.perf_counter()
            for s in segments:
                s.comparison = compare_segment(
                    s.live.segment, live_judge=s.live.judge, golden_judge=s.golden.judge,
                    live_flags=s.live.flags, golden_flags=s.golden.flags,
                    cover=segment_coverage(s))
            t_stats = time.perf_counter() - t0
            t0 = time.perf_counter()
            import evidently.metrics  # noqa: F401  (timed apart: a one-off per process)

            t_import = time.perf_counter() - t0
            t0 = time.perf_counter()
            path = build_report(Path(tmp) / "report.html", segments, title="benchmark")
            t_report = time.perf_counter() - t0
            flagged = [s.comparison.segment for s in segments if s.comparison.flagged]
            print(f"comparison of 2 segments x {args.live} live traces vs {len(golden.rows)} "
                  f"golden results: embedding {t_embed:.2f}s "
                  f"({len({t for s in segments for t in s.live.inputs + s.golden.inputs})} "
                  f"distinct texts, static embedder), statistics + coverage {t_stats:.2f}s, "
                  f"Evidently report {t_report:.2f}s ({path.stat().st_size / 1e6:.1f} MB) after "
                  f"importing Evidently {t_import:.2f}s; flagged: {flagged}")
            np.testing.assert_equal(flagged, ["support-bot|sim-b"])
    finally:
        sim.terminate()
        sim.wait(10)


if __name__ == "__main__":
    main()
