"""The scoring stage: sampled traces in (from the scoring topic), judge and embedding
scores out, each fed to its segment's detector.

Judge scores are on [0, 1] (the rubric's scale mapped linearly, see
:attr:`pipeline.scorers.judge.JudgeResult.value`), stored in ``scores``
(``scorer = 'judge'``, ``name`` = the rubric) with the sampling rate that applied, and
fed to the segment's ADWIN. Inputs are embedded in one batch per segment and fed to the
segment's embedding detector; the row (``scorer = 'embedding'``, ``name = 'novel'``)
says whether the input lay farther from the reference's principal subspace than its top
quantile bin (:meth:`detectors.embedding.EmbeddingDrift.is_novel`; nan while the detector
warms up).
Only traces sampled at the segment's base rate reach the embedding detector: the ones
boosted for risk would bias the input distribution it watches. A failed call is a row
with its error and a nan value; it never reaches a detector and never stops the stream.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from detectors.registry import SegmentRegistry
from pipeline.ingest import DRIFT_COLUMNS, SCORE_COLUMNS, drift_row
from pipeline.scorers.embedders import Embedder
from pipeline.scorers.judge import Judge, JudgeItem
from schemas.events import DriftEvent
from sinks.clickhouse_writer import TableBatch

#: The detector signals fed by this stage.
JUDGE_SIGNAL = "judge"
EMBEDDING_SIGNAL = "embedding"
SAMPLED_SCORE_COLUMNS = (*SCORE_COLUMNS, "rubric_version", "cost_usd", "error")


@dataclass(slots=True)
class SampledOutcome:
    scores: TableBatch = field(default_factory=lambda: TableBatch("scores",
                                                                  SAMPLED_SCORE_COLUMNS))
    drift: TableBatch = field(default_factory=lambda: TableBatch("drift_events", DRIFT_COLUMNS))
    events: list[DriftEvent] = field(default_factory=list)
    judged: int = 0
    judge_errors: int = 0
    embedded: int = 0
    embed_errors: int = 0
    cost_usd: float = 0.0

    def detect(self, registry: SegmentRegistry, req: dict[str, Any], signal: str,
               value: float, ts: datetime) -> None:
        event = registry.update(req["segment"], signal, value, trace_id=req["trace_id"], ts=ts)
        if event is not None:
            self.add_events([event])

    def add_events(self, events: list[DriftEvent]) -> None:
        self.events += events
        self.drift.rows += [drift_row(e) for e in events]


async def score_sampled(judge: Judge | None, embedder: Embedder | None,
                        registry: SegmentRegistry, requests: list[bytes]) -> SampledOutcome:
    out = SampledOutcome()
    parsed = [orjson.loads(r) for r in requests]
    times = [datetime.fromisoformat(p["ts"]) for p in parsed]
    if judge is not None:
        await _judge(judge, registry, parsed, times, out)
    if embedder is not None:
        await _embed(embedder, registry, parsed, times, out)
    return out


async def _judge(judge: Judge, registry: SegmentRegistry, parsed: list[dict[str, Any]],
                 times: list[datetime], out: SampledOutcome) -> None:
    results = await judge.score_many(
        JudgeItem(p["trace_id"], p["question"], p["answer"]) for p in parsed)
    for req, ts, result in zip(parsed, times, results, strict=True):
        row = result.row(req["rate"])
        out.judged += 1
        out.cost_usd += result.cost_usd
        out.scores.rows.append([
            req["trace_id"], ts, req["segment"], req["model_version"], row.scorer, row.name,
            row.value, row.label, row.sample_rate, row.rubric_version, row.cost_usd,
            row.error])
        if not result.ok or result.value is None:
            out.judge_errors += 1
            continue
        out.detect(registry, req, JUDGE_SIGNAL, result.value, ts)


async def _embed(embedder: Embedder, registry: SegmentRegistry,
                 parsed: list[dict[str, Any]], times: list[datetime],
                 out: SampledOutcome) -> None:
    by_segment: dict[str, list[int]] = defaultdict(list)
    for i, req in enumerate(parsed):
        if req.get("reason", "rate") == "rate":
            by_segment[req["segment"]].append(i)
    for segment, idx in by_segment.items():
        texts = [parsed[i]["question"] for i in idx]
        try:
            # Off the event loop: a local model is CPU work, an API embedder blocks.
            vectors = await asyncio.to_thread(embedder.embed, texts)
        except Exception as exc:  # a failed batch is recorded, never a crash
            error = f"{type(exc).__name__}: {exc}"[:300]
            out.embed_errors += len(idx)
            for i in idx:
                out.scores.rows.append(_embedding_row(parsed[i], times[i], math.nan, "", error))
            continue
        rows = np.asarray(vectors, dtype=np.float64)
        start = 0
        while start < len(idx):
            await _calibrate_if_due(registry, segment)
            detector = registry.live(segment, EMBEDDING_SIGNAL)
            calibrated = bool(getattr(detector, "calibrated", False))
            part = idx[start:]
            events, taken = registry.update_many(
                segment, EMBEDDING_SIGNAL, rows[start:],
                trace_ids=[parsed[i]["trace_id"] for i in part], ts=[times[i] for i in part])
            out.add_events(events)
            # a row that went into the warm-up (the reference) is not judged against it
            novel = (detector.novel(rows[start:start + taken])  # type: ignore[union-attr]
                     if calibrated else [math.nan] * taken)
            for i, flag in zip(part[:taken], novel, strict=True):
                label = "warmup" if not calibrated else "novel" if flag else "known"
                out.scores.rows.append(_embedding_row(parsed[i], times[i], float(flag), label,
                                                      ""))
            out.embedded += taken
            start += taken
        await _calibrate_if_due(registry, segment)  # a warm-up the last row filled


async def _calibrate_if_due(registry: SegmentRegistry, segment: str) -> None:
    """A detector whose warm-up just filled is calibrated off the event loop (0.3-2 s of
    CPU, per segment: inline, 100 segments warming up together would stall heartbeats
    and ingest for a minute), on a copy swapped in when done."""
    detector = registry.detector(segment, EMBEDDING_SIGNAL)
    if detector is None or not getattr(detector, "calibration_pending", False):
        return
    fitted = await asyncio.to_thread(detector.calibrated_copy)  # type: ignore[attr-defined]
    registry.replace(segment, EMBEDDING_SIGNAL, detector, fitted)


def _embedding_row(req: dict[str, Any], ts: datetime, value: float, label: str,
                   error: str) -> list[object]:
    return [req["trace_id"], ts, req["segment"], req["model_version"], "embedding", "novel",
            value, label, req["rate"], "", 0.0, error]
