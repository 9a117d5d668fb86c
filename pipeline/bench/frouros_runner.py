"""Frouros 0.9's streaming detectors on the detect-suite's streams, in Frouros' own venv.

Frouros pins numpy < 2.2 and scipy < 1.15 and brings river back, so it never enters
driftline's environment: :mod:`pipeline.bench.frouros_peers` builds a separate venv and
runs this file there as a script. It imports numpy and frouros only, nothing of driftline.

    python frouros_runner.py JOB_DIR

``JOB_DIR/job.json`` lists tasks ``{"id", "detector", "signal", "reference", "streams",
"change_at"}`` (``reference``: a 1-D ``.npy``; ``streams``: an ``.npz`` of 1-D arrays, one
per run); the answer goes to ``JOB_DIR/result.json`` as ``{id: [{"alarms": [...],
"seen": n, "seconds": t}, ...]}``. Detectors run at Frouros' defaults, like the other peers;
each one first sees the reference (as history; its alarms there are not counted) and is
reset after every alarm, as Frouros' own examples do.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: for 0/1 signals: the detectors of error rates (a rise of the value is the change)
ERROR_RATE = ("DDM", "EDDM", "HDDMA", "HDDMW", "RDDM", "STEPD", "ECDDWT")
#: for any numeric signal
NUMERIC = ("CUSUM", "PageHinkley", "GeometricMovingAverage")
KS_WINDOW = 200
KS_ALPHA = 0.05  # as evidently's windowed KS test in the same suite


class Streaming:
    """A concept-drift detector: ``update(value=x)``, ``drift``, ``reset()``."""

    def __init__(self, cls_name: str, reference: np.ndarray, flip: bool) -> None:
        import frouros.detectors.concept_drift as concept

        self.det = getattr(concept, cls_name)()
        self.flip = flip  # a judge pass rate falling is an error rate rising
        for v in reference:  # the reference is the history it starts from
            self.step(float(v))

    def step(self, x: float) -> bool:
        self.det.update(value=1.0 - x if self.flip else x)
        if self.det.drift:
            self.det.reset()
            return True
        return False


class IncrementalKS:
    """Frouros' IncrementalKSTest: a window of the stream against the reference, one
    test per update; an alarm at p < 0.05 restarts the window."""

    def __init__(self, reference: np.ndarray) -> None:
        from frouros.detectors.data_drift import IncrementalKSTest

        self.reference = reference
        self.make = lambda: IncrementalKSTest(window_size=KS_WINDOW)
        self.det = self.make()
        self.det.fit(X=reference)

    def step(self, x: float) -> bool:
        result, _ = self.det.update(value=x)
        if result is not None and result.p_value < KS_ALPHA:
            self.det = self.make()
            self.det.fit(X=self.reference)
            return True
        return False


def build(name: str, signal: str, reference: np.ndarray) -> Any:
    cls_name = name.removeprefix("frouros_")
    if cls_name == "IncrementalKSTest":
        return IncrementalKS(reference)
    return Streaming(cls_name, reference, flip=signal == "judge")


def run_task(task: dict[str, Any], job: Path) -> list[dict[str, Any]]:
    reference = np.load(job / task["reference"])
    streams = np.load(job / task["streams"])
    change_at = int(task["change_at"])
    out = []
    for key in sorted(streams.files, key=lambda k: int(k.removeprefix("run"))):
        det = build(task["detector"], task["signal"], reference)
        step: Callable[[float], bool] = det.step
        alarms: list[int] = []
        seen = 0
        start = time.perf_counter()
        for i, x in enumerate(streams[key].tolist()):
            seen = i + 1
            if step(x):
                alarms.append(i)
                if 0 <= change_at <= i:
                    break  # the delay is known; the rest of a change run is not needed
        out.append({"alarms": alarms, "seen": seen, "seconds": time.perf_counter() - start})
    return out


def detectors_for(signal: str) -> list[str]:
    names = [*NUMERIC, "IncrementalKSTest"]
    if signal in ("judge", "flag"):
        names = [*ERROR_RATE, *names]
    return ["frouros_" + n for n in names]


def main(job: Path) -> None:
    import warnings

    warnings.simplefilter("ignore")  # STEPD divides by zero on constant windows, scipy
    # warns when an exact KS p-value is out of reach: both are noise in this report
    spec = json.loads((job / "job.json").read_text())
    result = {task["id"]: run_task(task, job) for task in spec["tasks"]}
    (job / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
