"""Parsing throughput per format, on one core, against json.loads / orjson.loads.

    python tests/benchmarks/bench_parse.py [--seconds 1.0] [--repeat 3]

Each format parses the same realistic message (tests/unit/test_formats_payloads.py)
repeatedly through ``schemas.parse.parse_message``; the references decode the same bytes
only. Best of ``--repeat`` runs, so noise from other processes on a shared machine
weighs less. The process is pinned to one CPU where the OS allows it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from schemas.limits import Limits
from schemas.parse import parse_message
from tests.benchmarks.machine import describe
from tests.unit.test_formats_payloads import NOW, payloads


def machine() -> str:
    return f"{describe()}; orjson {orjson.__version__}"


def rate(fn: Callable[[], object], seconds: float, repeat: int) -> float:
    """Best calls/s of ``repeat`` runs of about ``seconds`` each."""
    best = 0.0
    for _ in range(repeat):
        n, began = 0, time.perf_counter()
        deadline = began + seconds
        while True:
            for _ in range(100):
                fn()
            n += 100
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - began))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    limits = Limits()
    print(machine())
    print(f"one core, best of {args.repeat} x {args.seconds:.1f} s\n")
    header = (f"{'format':<18} {'bytes':>6} {'traces':>6} {'parse msg/s':>12} "
              f"{'traces/s':>10} {'orjson.loads/s':>15} {'json.loads/s':>13} {'parse/orjson':>12}")
    print(header)
    print("-" * len(header))
    for name, raw in payloads().items():
        result = parse_message(raw, limits=limits, now=NOW)
        n_traces = len(result.traces)
        parse_rate = rate(lambda raw=raw: parse_message(raw, limits=limits, now=NOW),
                          args.seconds, args.repeat)
        if name == "otlp_proto":
            ref_o = ref_j = float("nan")  # not JSON: no decoding reference
        else:
            ref_o = rate(lambda raw=raw: orjson.loads(raw), args.seconds, args.repeat)
            ref_j = rate(lambda raw=raw: json.loads(raw), args.seconds, args.repeat)
        ratio = f"{ref_o / parse_rate:.1f}x slower" if ref_o == ref_o else "-"
        print(f"{name:<18} {len(raw):>6} {n_traces:>6} {parse_rate:>12,.0f} "
              f"{parse_rate * n_traces:>10,.0f} {ref_o:>15,.0f} {ref_j:>13,.0f} {ratio:>12}")


if __name__ == "__main__":
    main()
