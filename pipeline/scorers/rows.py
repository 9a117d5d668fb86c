"""The one row shape every scorer emits, ready for ClickHouse ``scores`` (long format)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """One (trace, scorer, name) score.

    ``sample_rate`` is the probability with which the trace was scored, so SQL can
    weight rows back to the full traffic (``sum(value / sample_rate)``).

    >>> ScoreRow("t1", "heuristics", "refusal", 1.0).label
    ''
    """

    trace_id: str
    scorer: str
    name: str
    value: float
    label: str = ""
    rubric_version: str = ""
    cost_usd: float = 0.0
    sample_rate: float = 1.0
    error: str = ""
