"""Shared by the benchmark modules: the sub-app, the signals, where the data is."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

bench_app = typer.Typer(no_args_is_help=True, add_completion=False,
                        help="Benchmarks of driftline's drift detectors.")

DATA = Path(__file__).resolve().parent.parent / "data" / "banking77"
#: where `bench detect` reads each signal's value in a trace line
SCORE_FIELDS = {"judge": "scores.judge", "flag": "scores.flag"}


class Signal(StrEnum):
    embedding = "embedding"
    judge = "judge"
    flag = "flag"
