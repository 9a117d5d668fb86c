"""What the golden-versus-live comparison reads from ClickHouse: the live window per
segment and, per segment, the golden results of the last accepted run.

Every query goes through :func:`pipeline.sql_client.run_query`, so it works while a
worker owns the embedded engine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from pipeline.config import Settings
from pipeline.golden.store import sql_str
from pipeline.scorers.heuristics import FLAG_NAMES
from pipeline.sql_client import run_query
from schemas.trace import MISSING, SEGMENT_SEPARATOR

FLAGS = tuple(sorted(FLAG_NAMES))
#: per-trace numbers the report shows next to the judge score
MEASURES = ("length_ratio",)


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime

    def where(self, column: str = "ts") -> str:
        fmt = "%Y-%m-%d %H:%M:%S.%f"
        return (f"{column} >= toDateTime64('{self.start.strftime(fmt)[:-3]}', 3, 'UTC') AND "
                f"{column} < toDateTime64('{self.end.strftime(fmt)[:-3]}', 3, 'UTC')")


@dataclass(slots=True)
class Side:
    """One side of a segment's comparison: golden results or the live window."""

    segment: str
    judge: list[float] = field(default_factory=list)
    #: flag name -> (flagged, total)
    flags: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: one dict per case / trace: id, input, output, judge, flags, measures
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: golden: the run these results come from
    run_id: str = ""

    @property
    def inputs(self) -> list[str]:
        return [r["input"] for r in self.rows]


def match_segment(live: str, golden: Iterable[str]) -> str | None:
    """The golden segment that speaks for a live one: every field equal or unset ("-") in
    the golden key; the most specific wins.

    >>> match_segment("bot|gpt|v2", ["bot|-|-", "bot|gpt|-", "shop|gpt|-"])
    'bot|gpt|-'
    >>> match_segment("bot|llama|v2", ["bot|gpt|-"]) is None
    True
    """
    want = live.split(SEGMENT_SEPARATOR)
    best: tuple[int, str] | None = None
    for key in golden:
        have = key.split(SEGMENT_SEPARATOR)
        if len(have) != len(want) or any(h not in (w, MISSING) for h, w in zip(have, want,
                                                                                 strict=True)):
            continue
        unset = sum(h == MISSING for h in have)
        if best is None or unset < best[0]:
            best = (unset, key)
    return best[1] if best else None


def thin(rows: Sequence[tuple[str, float, float]]) -> list[float]:
    """Judge scores as if every trace had been sampled at the segment's base rate.

    Risky traces are always judged (rate 1) while the rest are sampled at a few percent,
    so the raw scores over-represent failures. Keeping a row with probability
    ``base / rate`` (deterministically, by trace id) undoes the boost without
    repeating any score. Rows are ``(trace_id, value, sample_rate)``.

    >>> rows = [(f"t{i}", 0.9, 0.1) for i in range(100)] + [(f"r{i}", 0.0, 1.0)
    ...                                                      for i in range(100)]
    >>> kept = thin(rows)
    >>> kept.count(0.9), 0 < kept.count(0.0) < 30
    (100, True)
    """
    if not rows:
        return []
    base = min(r[2] for r in rows if r[2] > 0)
    kept = []
    for trace_id, value, rate in rows:
        u = int.from_bytes(hashlib.blake2b(trace_id.encode(), digest_size=8).digest(),
                           "big") / 2**64
        if rate <= 0 or u < base / rate:
            kept.append(value)
    return kept


def _text(raw: str) -> str:
    """A golden case's stored input (JSON text or chat messages) as plain text."""
    value = orjson.loads(raw)
    if isinstance(value, str):
        return value
    return "\n".join(str(m.get("content") or "") for m in value)


def golden_sides(settings: Settings, run_id: str | None = None) -> dict[str, Side]:
    """Per golden segment, the results of the newest gate-passing run that covered it
    (or of ``run_id``): a failed run never becomes the yardstick for live traffic."""
    if run_id is None:
        _, picks = run_query(settings, """
            SELECT r.segment, argMax(r.run_id, g.started_at)
            FROM (SELECT DISTINCT segment, run_id FROM golden_results FINAL) AS r
            INNER JOIN (SELECT run_id, started_at FROM golden_runs FINAL
                        WHERE gate_passed = 1) AS g ON g.run_id = r.run_id
            GROUP BY r.segment""")
    else:
        _, picks = run_query(settings, "SELECT DISTINCT segment, run_id FROM golden_results "
                                       f"FINAL WHERE run_id = {sql_str(run_id)}")
    sides: dict[str, Side] = {}
    for segment, rid in picks:
        _, rows = run_query(settings, f"""
            SELECT r.case_id, any(c.input), anyIf(r.output, r.output != ''),
                   groupArray((r.name, r.value))
            FROM golden_results AS r FINAL
            LEFT JOIN (SELECT case_id, input FROM golden_cases FINAL
                       WHERE dataset_version = (SELECT any(dataset_version)
                                                FROM golden_runs FINAL
                                                WHERE run_id = {sql_str(rid)})) AS c
                ON c.case_id = r.case_id
            WHERE r.run_id = {sql_str(rid)} AND r.segment = {sql_str(segment)}
            GROUP BY r.case_id ORDER BY r.case_id""")
        side = Side(segment, run_id=rid)
        for case_id, raw_input, output, pairs in rows:
            values = {name: float(v) for name, v in pairs}
            side.rows.append(_row(case_id, _text(raw_input) if raw_input else "", output or "",
                                  values.get("judge"), values))
        side.judge = [r["judge"] for r in side.rows if r["judge"] is not None]
        side.flags = {f: (sum(1 for r in side.rows if r[f]), len(side.rows)) for f in FLAGS}
        sides[segment] = side
    return sides


def _row(row_id: str, text: str, output: str, judge: float | None,
         values: dict[str, float]) -> dict[str, Any]:
    row: dict[str, Any] = {"id": row_id, "input": text, "output": output, "judge": judge}
    for name in FLAGS:
        row[name] = int(values.get(name, 0.0) > 0)
    for name in MEASURES:
        row[name] = values.get(name)
    return row


def live_sides(settings: Settings, window: Window, *, sample: int) -> dict[str, Side]:
    """Per live segment with traffic in ``window``: judge scores (thinned back to the
    base sampling rate), guardrail flag counts over every trace, and up to ``sample``
    traces (a hash sample) with their scores, for coverage and the report."""
    sides: dict[str, Side] = {}
    _, judged = run_query(settings, f"""
        SELECT segment, groupArray((trace_id, value, sample_rate))
        FROM (SELECT segment, trace_id, value, sample_rate FROM scores FINAL
              WHERE scorer = 'judge' AND isFinite(value) AND {window.where()}
              ORDER BY cityHash64(trace_id) LIMIT {4 * sample} BY segment)
        GROUP BY segment""")
    _, flags = run_query(settings, f"""
        SELECT segment, name, countIf(value > 0), count()
        FROM scores_all
        WHERE scorer = 'heuristics' AND name IN ({", ".join(map(sql_str, FLAGS))})
          AND {window.where()}
        GROUP BY segment, name""")
    _, traces = run_query(settings, f"""
        SELECT t.segment, t.trace_id, t.input, t.output, s.pairs
        FROM (SELECT segment, trace_id, input, output FROM traces FINAL
              WHERE {window.where()}
              ORDER BY cityHash64(trace_id) LIMIT {sample} BY segment) AS t
        LEFT JOIN (SELECT trace_id, groupArray((if(scorer = 'judge', 'judge', name), value))
                          AS pairs
                   FROM scores_all
                   WHERE {window.where()} AND isFinite(value)
                     AND (scorer = 'judge' OR name IN ({", ".join(map(sql_str,
                                                                     FLAGS + MEASURES))}))
                   GROUP BY trace_id) AS s ON s.trace_id = t.trace_id
        ORDER BY t.segment, t.trace_id""")
    for segment, pairs in judged:
        sides.setdefault(segment, Side(segment)).judge = thin(
            [(str(t), float(v), float(r)) for t, v, r in pairs])
    for segment, name, k, n in flags:
        sides.setdefault(segment, Side(segment)).flags[name] = (int(k), int(n))
    for segment, trace_id, text, output, pairs in traces:
        values = {name: float(v) for name, v in (pairs or [])}
        sides.setdefault(segment, Side(segment)).rows.append(
            _row(trace_id, text, output, values.get("judge"), values))
    return sides
