"""One batch of Kafka records in, rows for ClickHouse, dead letters and drift events out.

Pure and synchronous, so it is tested without Kafka; the Faust agent only moves
records in and results out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import orjson
from aiokafka.partitioner import murmur2
from aiokafka.structs import ConsumerRecord

from detectors.registry import SegmentRegistry
from pipeline.metrics import Counters
from pipeline.recent_ids import RecentIds
from pipeline.scorers.heuristics import REFUSAL_AT, HeuristicScorer, flagged
from pipeline.scorers.sampler import Decision, Sampler
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
COUNT_COLUMNS = ("worker", "consumed", "stored", "dead_lettered", "duplicates",
                 "skipped_spans", "truncated", "rerouted")
DRIFT_COLUMNS = (
    "event_id", "detected_at", "segment", "detector", "signal", "severity", "trace_id",
    "statistic", "threshold", "mean_before", "mean_after", "window", "details",
)

#: The per-trace signals ingest feeds to a segment's detectors: the refusal rate (ADWIN)
#: and the guardrail flag rate, any flag raised (a calibrated Bernoulli CUSUM). The other
#: heuristics are stored for SQL only.
REFUSAL_SIGNAL = "refusal"
GUARDRAIL_SIGNAL = "guardrail"
DETECTED_SIGNALS = (REFUSAL_SIGNAL, GUARDRAIL_SIGNAL)


@dataclass(slots=True)
class Record:
    """A consumed record as ingest reads it. The worker passes aiokafka's
    ``ConsumerRecord`` itself (same attribute names); tests and replays build these."""

    value: bytes
    key: bytes | None
    topic: str
    partition: int
    offset: int
    headers: Sequence[tuple[str, bytes | None]] = ()


AnyRecord = Record | ConsumerRecord[bytes, bytes]


@dataclass(slots=True)
class BatchOutcome:
    # JSON: the contract keeps its floats finite, its timestamps are UTC-aware
    traces: TableBatch = field(default_factory=lambda: TableBatch("traces", TRACE_COLUMNS,
                                                                  encoding="json"))
    drift: TableBatch = field(default_factory=lambda: TableBatch("drift_events", DRIFT_COLUMNS))
    dead_rows: TableBatch = field(default_factory=lambda: TableBatch("dead_letters",
                                                                     DEAD_COLUMNS))
    counts: TableBatch = field(default_factory=lambda: TableBatch("ingest_batches",
                                                                  COUNT_COLUMNS))
    dead: list[DeadLetter] = field(default_factory=list)
    events: list[DriftEvent] = field(default_factory=list)
    #: segment -> Kafka partition it arrived on, for the detector state snapshot
    segments: dict[str, int] = field(default_factory=dict)
    #: (segment key, JSON) of the traces sampled for the judge
    sampled: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: (segment key, plain JSON, headers) of traces that arrived on a partition other
    #: than their segment's: sent back to the traces topic keyed by segment
    rerouted: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)
    consumed: int = 0
    duplicates: int = 0
    skipped_spans: int = 0
    truncated: int = 0

    @property
    def tables(self) -> list[TableBatch]:
        return [self.traces, self.drift, self.dead_rows, self.counts]

    def add_dead(self, d: DeadLetter) -> None:
        self.dead.append(d)
        self.dead_rows.rows.append([
            d.reason, d.detail[:2000], d.source_topic, d.source_partition, d.source_offset,
            len(d.value), d.value[:1024].decode("utf-8", "replace")])


def scoring_request(trace: Trace, segment: str, decision: Decision) -> bytes:
    """What the scoring stage needs of a sampled trace (see :mod:`pipeline.sampled`)."""
    return orjson.dumps({
        "trace_id": trace.trace_id, "ts": trace.timestamp.isoformat(), "segment": segment,
        "model_version": trace.model_version or "", "question": trace.input_text,
        "answer": trace.output_text, "rate": decision.rate, "reason": decision.reason})


@lru_cache(maxsize=1 << 16)
def partition_of(segment: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as the producer's
    ``murmur2_random`` and aiokafka use) gives a message keyed by ``segment``.

    Cached: aiokafka's murmur2 is pure Python, a tenth of the ingest path when it ran
    on every trace, and segments repeat."""
    return (murmur2(segment.encode()) & 0x7FFFFFFF) % partitions


#: Headers that carry a rerouted trace's provenance (its original wire format and cut
#: fields) across its second trip through the traces topic.
_FORMAT_HEADER = "driftline.source_format"
_TRUNCATED_HEADER = "driftline.truncated_fields"


def rerouted(trace: Trace, segment: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    headers = [(_FORMAT_HEADER, trace.source_format.encode())]
    if trace.truncated_fields:
        headers.append((_TRUNCATED_HEADER, ",".join(trace.truncated_fields).encode()))
    return segment.encode(), trace.model_dump_json(exclude_none=True).encode(), headers


def _restore_provenance(trace: Trace, record: AnyRecord) -> None:
    if not record.headers:
        return
    headers = dict(record.headers)
    fmt = headers.get(_FORMAT_HEADER)
    if fmt is not None:
        cut = (headers.get(_TRUNCATED_HEADER) or b"").decode()
        trace._set_provenance(tuple(f for f in cut.split(",") if f)
                              or trace.truncated_fields, fmt.decode())


def trace_row(trace: Trace, segment: str, record: AnyRecord,
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


def dead_letter(record: AnyRecord, reason: str, detail: str) -> DeadLetter:
    return DeadLetter(
        value=record.value or b"", key=record.key, reason=reason, detail=detail,
        source_topic=record.topic, source_partition=record.partition,
        source_offset=record.offset,
        extra_headers=tuple((k, v or b"") for k, v in record.headers if k in _REPLAY_HEADERS))


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
        heuristics: HeuristicScorer | None = None,
        sampler: Sampler | None = None,
        recent: RecentIds | None = None,
        partitions: int | None = None,
        worker: str = "",
    ) -> None:
        """``partitions``: the traces topic's partition count; a trace found on another
        partition than its segment key maps to is rerouted there (see :meth:`process`),
        so each segment's detectors see all of its traffic in one place. ``None`` (tests,
        replays) processes every trace where it is."""
        self.heuristics = heuristics or HeuristicScorer()
        self.sampler = sampler
        self.segment_fields = segment_fields
        self.registry = registry
        self.counters = counters
        self.limits = limits
        self.fmt = fmt
        self.recent = recent
        self.partitions = partitions
        self.worker = worker

    def process(self, records: Iterable[AnyRecord]) -> BatchOutcome:
        """Every record becomes stored traces, rerouted traces, skipped spans or a dead
        letter. Producers that do not key by segment (the OpenTelemetry Collector's Kafka
        exporter, unless told to) scatter a segment over partitions; such traces are sent
        back to the traces topic as plain JSON keyed by their segment, with their
        provenance in headers, and processed on arrival where they belong."""
        out = BatchOutcome()
        self.process_into(out, records)
        self.close(out)
        return out

    def process_into(self, out: BatchOutcome, records: Iterable[AnyRecord]) -> None:
        """:meth:`process` a slice of a batch into ``out``: the worker interleaves the
        slices with its other tasks (storage, the judge), then closes it (:meth:`close`)."""
        now = datetime.now(UTC)  # the timestamp window's clock, read once per slice
        for record in records:
            out.consumed += 1
            try:
                result = parse_message(record.value, limits=self.limits, fmt=self.fmt,
                                       now=now)
            except TraceError as exc:
                out.add_dead(dead_letter(record, exc.reason, exc.detail))
                continue
            out.skipped_spans += result.skipped
            for trace in result.traces:
                _restore_provenance(trace, record)
                if trace.truncated_fields:
                    out.truncated += 1
                self._accept(trace, record, out)
            if result.rejected:
                # Some LLM spans of a multi-span message were bad: the whole message goes
                # to the DLQ; replaying it later re-stores its good traces harmlessly.
                first = result.rejected[0]
                out.add_dead(dead_letter(
                    record, first.reason,
                    f"{len(result.rejected)} LLM span(s) rejected; first: {first.detail}"))

    def close(self, out: BatchOutcome) -> None:
        """Count a processed batch, in the counters and as its ``ingest_batches`` row."""
        self.counters.consumed += out.consumed
        self.counters.skipped_spans += out.skipped_spans
        self.counters.truncated += out.truncated
        self.counters.duplicates += out.duplicates
        self.counters.rerouted += len(out.rerouted)
        out.counts.rows.append([self.worker, out.consumed, len(out.traces.rows),
                                len(out.dead), out.duplicates, out.skipped_spans,
                                out.truncated, len(out.rerouted)])

    def _accept(self, trace: Trace, record: AnyRecord, out: BatchOutcome) -> None:
        segment = trace.segment_key(self.segment_fields)
        if self.partitions is not None and record.partition != partition_of(
                segment, self.partitions):
            out.rerouted.append(rerouted(trace, segment))
            return
        if self.recent is not None and self.recent.seen(trace.trace_id):
            out.duplicates += 1  # stored already: ClickHouse would keep one row anyway
            return
        out.segments[segment] = record.partition
        # Heuristics run on every trace and are stored on its row (see DDL 0022).
        heuristic = self.heuristics.score_trace(trace)
        out.traces.rows.append(trace_row(trace, segment, record, heuristic))
        flag = flagged(heuristic)
        if self.sampler is not None:
            decision = self.sampler.decide(
                trace.trace_id, segment, feedback=trace.feedback, error=trace.error,
                flagged=flag)
            if decision.sampled:
                out.sampled.append((segment.encode(), scoring_request(
                    trace, segment, decision)))
        refusal = heuristic[REFUSAL_AT][1]
        for name, value in ((REFUSAL_SIGNAL, refusal), (GUARDRAIL_SIGNAL, float(flag))):
            event = self.registry.update(
                segment, name, value, trace_id=trace.trace_id, ts=trace.timestamp
            )
            if event is not None:
                out.events.append(event)
                out.drift.rows.append(drift_row(event))
