"""Two revisions of driftline through the end-to-end benchmark, in alternating runs.

    python -m tests.benchmarks.e2e.compare BEFORE [AFTER] [--pairs 3] [--traces 200000]
        [--unkeyed] [--invalid-every N]

This host's speed drifts by ±15 % within minutes, so two runs taken one after the other
say little about a change worth less than that. This runs ``tests.benchmarks.e2e.run``
for BEFORE and AFTER (a git revision each; AFTER defaults to the working tree) in
alternation, ``--pairs`` times, each from a git worktree of its revision so that the
worker it starts imports that revision's code, and prints each run's figures, the
medians, and the per-pair ratio AFTER / BEFORE. It reads the figures from the table the
benchmark prints, so BEFORE may be any revision whose benchmark prints them (rows a
revision lacks show as "-").
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from tests.benchmarks.machine import describe

REPO = Path(__file__).resolve().parents[3]
console = Console(width=120)

#: figure -> (the start of its row in the benchmark's table, which number of the value)
FIGURES = {
    "traces/s": ("driftline worker traces/s", 0),
    "worker CPU µs/trace": ("worker CPU (cores busy while draining)", 1),
    "main thread µs/trace": ("CPU while draining: worker main thread", 1),
    "ClickHouse µs/trace": ("CPU while draining: worker ClickHouse threads", 1),
}


def figures(output: str) -> dict[str, float | None]:
    """The figures of one benchmark run, from its printed table."""
    found: dict[str, float | None] = dict.fromkeys(FIGURES)
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│") if c.strip()]
        if len(cells) != 2:
            continue
        for name, (label, index) in FIGURES.items():
            if cells[0].startswith(label):
                numbers = re.findall(r"[\d.,]+", cells[1])
                found[name] = float(numbers[index].replace(",", ""))
    return found


def checkout(revision: str, into: Path) -> Path:
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(into),
                    revision], check=True)
    return into


def run_once(tree: Path, traces: int, extra: list[str]) -> dict[str, float | None]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.e2e.run", "--traces", str(traces),
         "--latency-traces", "2000", *extra], cwd=tree, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the benchmark failed in {tree}:\n{done.stdout[-3000:]}"
                         f"{done.stderr[-3000:]}")
    return figures(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", help="git revision")
    ap.add_argument("after", nargs="?", help="git revision (default: the working tree)")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--traces", type=int, default=200_000)
    ap.add_argument("--unkeyed", action="store_true",
                    help="publish without keys (both revisions' benchmarks must know it)")
    ap.add_argument("--invalid-every", type=int, default=0,
                    help="one message in this many invalid (both revisions' benchmarks must "
                         "know it)")
    args = ap.parse_args()
    extra = [*(["--unkeyed"] if args.unkeyed else []),
             *(["--invalid-every", str(args.invalid_every)] if args.invalid_every else [])]

    scratch = Path(tempfile.mkdtemp(prefix="driftline-compare-"))
    trees = {"before": checkout(args.before, scratch / "before"),
             "after": checkout(args.after, scratch / "after") if args.after else REPO}
    results: dict[str, list[dict[str, float | None]]] = {"before": [], "after": []}
    console.print(f"machine: {describe()}")
    try:
        with Progress(console=console) as progress:
            task = progress.add_task("alternating runs", total=2 * args.pairs)
            for _ in range(args.pairs):
                for side, tree in trees.items():
                    results[side].append(run_once(tree, args.traces, extra))
                    progress.advance(task)
    finally:
        for tree in trees.values():
            if tree != REPO:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                str(tree)], check=False)
    print_table(args, results)


def print_table(args: argparse.Namespace,
                results: dict[str, list[dict[str, float | None]]]) -> None:
    table = Table(title=f"{args.after or 'working tree'} against {args.before}, "
                        f"{args.pairs} alternating pairs, {args.traces:,} traces each")
    table.add_column("figure")
    for side in ("before", "after"):
        table.add_column(f"{side}: runs", justify="right")
        table.add_column("median", justify="right")
    table.add_column("after / before, per pair", justify="right")
    for name in FIGURES:
        row = [name]
        for side in ("before", "after"):
            values = [r[name] for r in results[side]]
            known = [v for v in values if v is not None]
            row.append(" / ".join("-" if v is None else f"{v:,.0f}" for v in values))
            row.append(f"{statistics.median(known):,.0f}" if known else "-")
        ratios = [a[name] / b[name] for b, a in zip(results["before"], results["after"],
                                                    strict=True)
                  if a[name] is not None and b[name]]
        row.append(" / ".join(f"{r:.2f}" for r in ratios) or "-")
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
