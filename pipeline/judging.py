"""The judge stage: sampled traces in (from the scoring topic), judge scores out.

Scores are normalised to [0, 1] (the rubric's scale mapped linearly), stored in
``scores`` (``scorer = 'judge'``, ``name`` = the rubric) with the sampling rate that
applied, and fed to the segment's judge-score detector. A failed call is a row with its
error and a NaN value; it never reaches a detector and never stops the stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import orjson

from detectors.registry import SegmentRegistry
from pipeline.ingest import DRIFT_COLUMNS, SCORE_COLUMNS, drift_row
from pipeline.scorers.judge import Judge, JudgeItem
from schemas.events import DriftEvent
from sinks.clickhouse_writer import TableBatch

#: The detector signal fed by judge scores.
JUDGE_SIGNAL = "judge"
JUDGE_SCORE_COLUMNS = (*SCORE_COLUMNS, "rubric_version", "cost_usd", "error")


@dataclass(slots=True)
class JudgeOutcome:
    scores: TableBatch = field(default_factory=lambda: TableBatch("scores",
                                                                  JUDGE_SCORE_COLUMNS))
    drift: TableBatch = field(default_factory=lambda: TableBatch("drift_events", DRIFT_COLUMNS))
    events: list[DriftEvent] = field(default_factory=list)
    judged: int = 0
    errors: int = 0
    cost_usd: float = 0.0


async def judge_batch(judge: Judge, registry: SegmentRegistry,
                      requests: list[bytes]) -> JudgeOutcome:
    out = JudgeOutcome()
    parsed = [orjson.loads(r) for r in requests]
    results = await judge.score_many(
        JudgeItem(p["trace_id"], p["question"], p["answer"]) for p in parsed)
    lo, hi = judge.rubric.scale_min, judge.rubric.scale_max
    rubric = judge.rubric.version_id.rsplit("-v", 1)[0]
    for req, result in zip(parsed, results, strict=True):
        ts = datetime.fromisoformat(req["ts"])
        value = (float("nan") if result.score is None
                 else (result.score - lo) / (hi - lo))
        out.judged += 1
        out.cost_usd += result.cost_usd
        out.scores.rows.append([
            req["trace_id"], ts, req["segment"], req["model_version"], "judge", rubric,
            value, result.label, req["rate"], result.rubric_version, result.cost_usd,
            result.error])
        if not result.ok or result.score is None:
            out.errors += 1
            continue
        event = registry.update(req["segment"], JUDGE_SIGNAL, value,
                                trace_id=req["trace_id"], ts=ts)
        if event is not None:
            out.events.append(event)
            out.drift.rows.append(drift_row(event))
    return out
