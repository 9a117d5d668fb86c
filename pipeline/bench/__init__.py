"""`driftline bench`: the detector benchmark (part of the product; other tools run it).

``detect`` runs one detector on one stream of traces against one reference and prints
``{"alarms": [...], "updates": n, "seconds": t}``; other tools parse it, keep it stable.
``detect-suite`` builds change scenarios from BANKING77 and synthetic score streams and
runs driftline's detectors and their peers (river, evidently, Frouros from its own venv) on
identical streams.
"""

from pipeline.bench import detect, suite  # noqa: F401  (they register their commands)
from pipeline.bench.common import bench_app

__all__ = ["bench_app"]
