"""One comparison of the detect-suite's bar, with more runs than the suite can afford.

    .venv/bin/python tests/benchmarks/bench_bar_recheck.py [--peer evidently_distance]
        [--runs 200] [--scenario "new intent at 5%" ...]

The suite decides the bar on 40 runs per scenario; evidently's distance test only alarms
every 200 updates, so its median jumps by 200 when one run moves, and a false-alarm rate
measured from the ~30 alarms of 40 controls is itself uncertain by ~20 %. This repeats the
suite's own procedure (the same streams, seeds and code: ``pipeline.bench.suite.Suite``)
with ``--runs`` runs: the peer's false alarms on that many no-change streams; driftline's
embedding detector at the lowest ERT whose false-alarm rate on the *same* streams is no
higher (``Suite.match``); both on the change scenario; the medians, and a bootstrap
interval of their difference. ~50 min at 200 runs against evidently's distance test
(~1,000 updates/s on 2 million control updates); ~25 min against Frouros' incremental KS
test (``--peer frouros_IncrementalKSTest``, run in Frouros' own venv as in the suite).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.bench import frouros_peers
from pipeline.bench.report import Outcome
from pipeline.bench.scenarios import Banking77, Scenario, scenarios
from pipeline.bench.suite import OURS, Suite
from tests.benchmarks.machine import describe


def report(sc: Scenario, ours: Outcome, ours_control: Outcome, peer: Outcome,
           peer_control: Outcome) -> None:
    print(f"\n{sc.name}, {ours.runs} runs")
    for o, c in ((ours, ours_control), (peer, peer_control)):
        d = np.array(o.delays)
        print(f"  {o.detector}: {c.fa_per_100k:.2f} false alarms / 100k on {c.runs} "
              f"no-change streams ({c.alarms_before} alarms in {c.pre_updates:,} updates); "
              f"median delay {np.median(d):.1f} (the suite's upper median "
              f"{o.delay_q(0.5):.0f}), p90 {o.delay_q(0.9):.0f}, missed {np.sum(np.isinf(d))}")
    rng = np.random.default_rng(0)
    ours_d, peer_d = np.array(ours.delays), np.array(peer.delays)
    diff = np.array([np.median(rng.choice(ours_d, len(ours_d)))
                     - np.median(rng.choice(peer_d, len(peer_d))) for _ in range(5000)])
    lo, hi = np.percentile(diff, [2.5, 97.5])
    gap = ours.delay_q(0.5) / peer.delay_q(0.5) - 1
    print(f"  difference of medians {np.median(ours_d) - np.median(peer_d):+.0f} (the suite's "
          f"bar: {gap:+.0%}), 95 % bootstrap interval [{lo:+.0f}, {hi:+.0f}], "
          f"P(driftline's <= peer's) {np.mean(diff <= 0):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenario", nargs="+", default=["new intent at 5%"])
    ap.add_argument("--peer", default="evidently_distance")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--ert", type=float, default=2000.0, help="the suite's configured ERT")
    a = ap.parse_args()
    print(describe())
    b77 = Banking77(0)
    by_name = {sc.name: sc for sc in scenarios(b77, quick=False)}
    control = by_name["no change (BANKING77)"]
    python = None
    if a.peer.startswith("frouros_"):
        python, why_not = frouros_peers.ensure_venv()
        if python is None:
            raise SystemExit(f"Frouros' venv: {why_not}")
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn()) as progress:
        suite = Suite(ert=a.ert, n_runs=a.runs, seed=0, progress=progress)

        def task(what: str, total: int | None = a.runs) -> object:
            return progress.add_task(what, total=total)

        def peer_on(sc: Scenario) -> Outcome:
            if python is None:
                return suite.native(sc, a.peer, task(f"{a.peer}, {sc.name}"))
            frouros = suite.frouros(python, sc, task(f"Frouros, {sc.name}", None))
            return next(o for o in frouros if o.detector == a.peer)

        base = suite.native(control, OURS, task(f"{OURS}, {control.name}"))
        peer_control = peer_on(control)
        ours_control = suite.match(control, [base, peer_control],
                                   task("matching false-alarm rates", None))[a.peer]
        results = [(by_name[name],
                    suite.native(by_name[name], ours_control.detector,
                                 task(f"{ours_control.detector}, {name}")),
                    peer_on(by_name[name]))
                   for name in a.scenario]
    for sc, ours, peer in results:
        report(sc, ours, ours_control, peer, peer_control)


if __name__ == "__main__":
    main()
