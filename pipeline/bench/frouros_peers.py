"""Frouros as a peer in the detect-suite, from a virtual environment of its own.

Frouros 0.9 pins numpy < 2.2 and scipy < 1.15 and pulls river back in, which would
downgrade driftline's environment. So it lives in ``~/.cache/driftline/frouros-venv``
(built on first use, or by ``driftline bench frouros-setup``), and the suite hands it the
very streams the other detectors saw, as ``.npy`` files, through
:mod:`pipeline.bench.frouros_runner` run as a script with that venv's Python.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REQUIREMENT = "frouros==0.9.0"
RUNNER = Path(__file__).with_name("frouros_runner.py")


def venv_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "driftline"
    return cache / "frouros-venv"


def _python() -> Path:
    return venv_dir() / "bin" / "python"


def ensure_venv() -> tuple[Path | None, str]:
    """The venv's Python, building the venv if needed; or None and why it failed."""
    python = _python()
    probe = [str(python), "-c", "import frouros, numpy; print(frouros.__version__)"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python, ""
    steps = [[sys.executable, "-m", "venv", "--clear", str(venv_dir())],
             [str(python), "-m", "pip", "install", "-q", REQUIREMENT]]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return None, f"`{' '.join(cmd[:4])} …` failed: {' / '.join(tail)}"
    return python, ""


@dataclass
class Task:
    """One Frouros detector on one scenario's runs (1-D streams, same as the peers')."""

    id: str
    detector: str
    signal: str
    reference: np.ndarray
    streams: list[np.ndarray]
    change_at: int


def run(python: Path, tasks: list[Task]) -> dict[str, list[dict[str, Any]]]:
    """Every task in one subprocess (starting Frouros costs a few seconds)."""
    with tempfile.TemporaryDirectory(prefix="driftline-frouros-") as tmp:
        job = Path(tmp)
        spec = []
        for n, task in enumerate(tasks):
            np.save(job / f"ref{n}.npy", np.asarray(task.reference, dtype=np.float64))
            np.savez(job / f"streams{n}.npz", **{f"run{r}": np.asarray(s, dtype=np.float64)
                                                 for r, s in enumerate(task.streams)})
            spec.append({"id": task.id, "detector": task.detector, "signal": task.signal,
                         "reference": f"ref{n}.npy", "streams": f"streams{n}.npz",
                         "change_at": task.change_at})
        (job / "job.json").write_text(json.dumps({"tasks": spec}))
        done = subprocess.run([str(python), str(RUNNER), str(job)], capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise RuntimeError(f"frouros runner failed: {done.stderr.strip()[-500:]}")
        result: dict[str, list[dict[str, Any]]] = json.loads((job / "result.json").read_text())
        return result
