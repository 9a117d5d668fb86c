"""Cheap per-trace signals computed on every trace.

The heuristics live in :mod:`pipeline.scorers.heuristics`; ``refusal`` and
``length_ratio`` stay importable from here for the ingest path.
"""

from __future__ import annotations

from pipeline.scorers.heuristics import refusal

__all__ = ["length_ratio", "refusal"]


def length_ratio(input_text: str, output: str) -> float:
    """Output characters per input character (an empty input counts as one character).

    >>> length_ratio("abcd", "abcdefgh")
    2.0
    """
    return len(output) / max(len(input_text), 1)
