"""One batch of Kafka records in, rows for ClickHouse, dead letters and drift events out.

Pure and synchronous, so it is tested without Kafka; the Faust agent only moves
records in and results out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson

from detectors.registry import SegmentRegistry
from pipeline.metrics import Counters
from pipeline.scorers.heuristics import HeuristicScorer, flagged
from pipeline.scorers.sampler import Sampler
from schemas.events import DriftEvent
from schemas.limits import Limits
from schemas.parse import parse_message
from schemas.trace import Trace, TraceError
from sinks.alerts_policy import classify
from sinks.clickhouse_writer import TableBatch
from sinks.dead_letter import DeadLetter

TRACE_COLUMNS = (
    "trace_id", "ts", "segment", "app", "route", "model", "model_version", "prompt_version",
    "tenant", "user_id", "session_id", "input", "output", "latency_ms", "input_tokens",
    "output_tokens", "cost_usd", "feedback", "error", "metadata", "kafka_partition",
    "kafka_offset", "source_format", "truncated_fields", "heuristics", "heuristic_labels",
)
DEAD_COLUMNS = ("reason", "detail", "source_topic", "source_partition", "source_offset",
                "size_bytes", "sample")
SCORE_COLUMNS = ("trace_id", "ts", "segment", "model_version", "scorer", "name", "value",
                 "label", "sample_rate")
DRIFT_COLUMNS = (
    "event_id", "detected_at", "segment", "detector", "signal", "severity", "trace_id",
    "statistic", "threshold", "mean_before", "mean_after", "window", "details",
)

#: The signals fed to a detector; the others are stored for SQL only.
DETECTED_SIGNALS = ("refusal",)


@dataclass(frozen=True, slots=True)
class Record:
    value: bytes
    key: bytes | None
    topic: str
    partition: int
    offset: int
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(slots=True)
class BatchOutcome:
    traces: TableBatch = field(default_factory=lambda: TableBatch("traces", TRACE_COLUMNS))
    drift: TableBatch = field(default_factory=lambda: TableBatch("drift_events", DRIFT_COLUMNS))
    dead_rows: TableBatch = field(default_factory=lambda: TableBatch("dead_letters",
                                                                     DEAD_COLUMNS))
    dead: list[DeadLetter] = field(default_factory=list)
    events: list[DriftEvent] = field(default_factory=list)
    #: segment -> Kafka partition it arrived on, for the detector state snapshot
    segments: dict[str, int] = field(default_factory=dict)
    #: (segment key, JSON) of the traces sampled for the judge
    sampled: list[tuple[bytes, bytes]] = field(default_factory=list)

    @property
    def tables(self) -> list[TableBatch]:
        return [self.traces, self.drift, self.dead_rows]

    def add_dead(self, d: DeadLetter) -> None:
        self.dead.append(d)
        self.dead_rows.rows.append([
            d.reason, d.detail[:2000], d.source_topic, d.source_partition, d.source_offset,
            len(d.value), d.value[:1024].decode("utf-8", "replace")])


def scoring_request(trace: Trace, segment: str, rate: float) -> bytes:
    """What the judge agent needs of a sampled trace (see :mod:`pipeline.judging`)."""
    return orjson.dumps({
        "trace_id": trace.trace_id, "ts": trace.timestamp.isoformat(), "segment": segment,
        "model_version": trace.model_version or "", "question": trace.input_text,
        "answer": trace.output_text, "rate": rate})


def trace_row(trace: Trace, segment: str, record: Record,
              heuristics: list[tuple[str, float, str]]) -> list[object]:
    return [
        trace.trace_id, trace.timestamp, segment, trace.app or "", trace.route or "",
        trace.model or "", trace.model_version or "", trace.prompt_version or "",
        trace.tenant or "", trace.user_id or "", trace.session_id or "", trace.input_text,
        trace.output_text, trace.latency_ms, trace.input_tokens, trace.output_tokens,
        trace.cost_usd, trace.feedback, trace.error or "", trace.metadata, record.partition,
        record.offset, trace.source_format, list(trace.truncated_fields),
        {name: value for name, value, _ in heuristics},
        {name: label for name, _, label in heuristics if label},
    ]


def drift_row(event: DriftEvent) -> list[object]:
    return [
        event.event_id, event.detected_at, event.segment, event.detector, event.signal,
        classify(event), event.trace_id, event.statistic, event.threshold, event.mean_before,
        event.mean_after, event.window, event.details,
    ]


#: Headers of a replayed dead letter that a new dead letter must keep (see pipeline/dlq.py).
_REPLAY_HEADERS = ("driftline.replay_of", "driftline.replays")


def dead_letter(record: Record, reason: str, detail: str) -> DeadLetter:
    return DeadLetter(
        value=record.value, key=record.key, reason=reason, detail=detail,
        source_topic=record.topic, source_partition=record.partition,
        source_offset=record.offset,
        extra_headers=tuple((k, v) for k, v in record.headers if k in _REPLAY_HEADERS))


class Ingestor:
    """Parses, validates, scores and feeds detectors, one batch at a time."""

    def __init__(
        self,
        *,
        segment_fields: tuple[str, ...],
        registry: SegmentRegistry,
        counters: Counters,
        limits: Limits,
        fmt: str = "auto",
        load_state: Callable[[str], bytes | None] = lambda segment: None,
        heuristics: HeuristicScorer | None = None,
        sampler: Sampler | None = None,
    ) -> None:
        self.heuristics = heuristics or HeuristicScorer()
        self.sampler = sampler
        self.segment_fields = segment_fields
        self.registry = registry
        self.counters = counters
        self.limits = limits
        self.fmt = fmt
        self.load_state = load_state

    def process(self, records: Iterable[Record]) -> BatchOutcome:
        out = BatchOutcome()
        for record in records:
            self.counters.consumed += 1
            try:
                result = parse_message(record.value, limits=self.limits, fmt=self.fmt)
            except TraceError as exc:
                out.add_dead(dead_letter(record, exc.reason, exc.detail))
                continue
            self.counters.skipped_spans += result.skipped
            self.counters.truncated += result.truncated
            for trace in result.traces:
                self._accept(trace, record, out)
            if result.rejected:
                # Some LLM spans of a multi-span message were bad: the whole message goes
                # to the DLQ; replaying it later re-stores its good traces harmlessly.
                first = result.rejected[0]
                out.add_dead(dead_letter(
                    record, first.reason,
                    f"{len(result.rejected)} LLM span(s) rejected; first: {first.detail}"))
        return out

    def _accept(self, trace: Trace, record: Record, out: BatchOutcome) -> None:
        segment = trace.segment_key(self.segment_fields)
        if segment not in self.registry:
            blob = self.load_state(segment)
            if blob is not None:
                self.registry.restore(segment, blob)
                self.counters.restored_segments += 1
        out.segments[segment] = record.partition
        # Heuristics run on every trace and are stored on its row (see DDL 0022).
        heuristic = self.heuristics.score_trace(trace)
        out.traces.rows.append(trace_row(trace, segment, record, heuristic))
        values = {name: value for name, value, _ in heuristic}
        if self.sampler is not None:
            decision = self.sampler.decide(
                trace.trace_id, segment, feedback=trace.feedback, error=trace.error,
                flagged=flagged(heuristic))
            if decision.sampled:
                out.sampled.append((segment.encode(), scoring_request(
                    trace, segment, decision.rate)))
        for name in DETECTED_SIGNALS:
            event = self.registry.update(
                segment, name, values[name], trace_id=trace.trace_id, ts=trace.timestamp
            )
            if event is not None:
                out.events.append(event)
                out.drift.rows.append(drift_row(event))
