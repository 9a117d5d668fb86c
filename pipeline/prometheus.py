"""The worker's counters in Prometheus' text exposition format (no client library needed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Sample = tuple[Mapping[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    return "{" + body + "}"


def metric(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> str:
    """One metric family.

    >>> print(metric("driftline_stored_total", "counter", "Traces stored.", [({}, 3)]), end="")
    # HELP driftline_stored_total Traces stored.
    # TYPE driftline_stored_total counter
    driftline_stored_total 3
    >>> print(metric("lag", "gauge", "Lag.", [({"partition": "0"}, 2.5)]).splitlines()[-1])
    lag{partition="0"} 2.5
    """
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        number = int(value) if float(value).is_integer() else value
        lines.append(f"{name}{_labels(labels)} {number}")
    return "\n".join(lines) + "\n"
