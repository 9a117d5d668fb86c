"""One batch of traces through every scorer: heuristics on all, judge and embedder on the
sample. The glue a Faust agent (or the golden-set job) calls; it owns no Kafka or Faust.

>>> import asyncio
>>> from schemas.trace import parse_trace
>>> t = parse_trace(b'{"trace_id": "t1", "timestamp": 0, "input": "hi", "output": ""}')
>>> scored = asyncio.run(OnlineScorer(sampler=Sampler(default_rate=0.0)).score([(t, "s")]))
>>> sorted({r.name for r in scored.rows} & {"empty", "pii"}), scored.decisions["t1"].reason
(['empty', 'pii'], 'risk:flag')
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pipeline.scorers.embedders import Embedder
from pipeline.scorers.heuristics import HeuristicScorer, flagged
from pipeline.scorers.judge import Judge, JudgeItem, JudgeResult
from pipeline.scorers.rows import ScoreRow
from pipeline.scorers.sampler import Decision, Sampler

if TYPE_CHECKING:
    from schemas.trace import Trace


@dataclass
class Scored:
    rows: list[ScoreRow] = field(default_factory=list)
    judged: list[JudgeResult] = field(default_factory=list)
    decisions: dict[str, Decision] = field(default_factory=dict)
    #: segment -> (trace ids, output embeddings) of the sampled traces, for drift detectors
    embeddings: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)
    embed_error: str = ""


@dataclass
class OnlineScorer:
    heuristics: HeuristicScorer = field(default_factory=HeuristicScorer)
    sampler: Sampler = field(default_factory=Sampler)
    judge: Judge | None = None
    embedder: Embedder | None = None

    async def score(self, batch: Sequence[tuple[Trace, str]]) -> Scored:
        """``batch`` is (trace, segment) pairs. Never raises for a judge or embedder
        failure: those are recorded on the result."""
        out = Scored()
        sampled: list[tuple[Trace, str, Decision]] = []
        for trace, segment in batch:
            h = self.heuristics.score_trace(trace)
            out.rows.extend(ScoreRow(trace.trace_id, "heuristics", n, v, lab)
                            for n, v, lab in h)
            d = self.sampler.decide(trace.trace_id, segment, feedback=trace.feedback,
                                    error=trace.error, flagged=flagged(h))
            out.decisions[trace.trace_id] = d
            if d.sampled:
                sampled.append((trace, segment, d))
        if not sampled:
            return out
        tasks = []
        if self.judge is not None:
            tasks.append(self._judge(sampled, out))
        if self.embedder is not None:
            tasks.append(self._embed(sampled, out))
        await asyncio.gather(*tasks)
        return out

    async def _judge(self, sampled: list[tuple[Trace, str, Decision]], out: Scored) -> None:
        assert self.judge is not None
        results = await self.judge.score_many(
            JudgeItem(t.trace_id, t.input_text, t.output_text) for t, _, _ in sampled)
        out.judged = results
        out.rows.extend(r.row(d.rate) for r, (_, _, d) in zip(results, sampled, strict=True))

    async def _embed(self, sampled: list[tuple[Trace, str, Decision]], out: Scored) -> None:
        assert self.embedder is not None
        try:
            # CPU-bound or blocking I/O: keep it off the event loop that consumes Kafka.
            vecs = await asyncio.to_thread(self.embedder.embed,
                                           [t.output_text for t, _, _ in sampled])
        except Exception as exc:  # recorded, so ingestion goes on without embeddings
            out.embed_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            return
        by_segment: dict[str, list[int]] = {}
        for i, (_, segment, _) in enumerate(sampled):
            by_segment.setdefault(segment, []).append(i)
        for segment, idx in by_segment.items():
            out.embeddings[segment] = ([sampled[i][0].trace_id for i in idx], vecs[idx])
