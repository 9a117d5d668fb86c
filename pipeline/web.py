"""The worker's web port: health, counters, and SQL against the store the worker owns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import faust
import orjson
from faust.web import Request, Response, View

from pipeline.metrics import Counters
from pipeline.prometheus import metric
from sinks.clickhouse_writer import ClickHouseWriter
from sinks.slack_alerter import SlackAlerter


def _json(web: Any, body: Any, status: int = 200) -> Response:
    # orjson with str() fallback: ClickHouse hands back datetimes, decimals, UUIDs.
    return web.bytes(orjson.dumps(body, default=str), content_type="application/json",
                     status=status)


def consumer_lag(app: faust.App, topic: str) -> dict[int, int]:
    """Messages per partition not yet committed (= not yet stored), by partition."""
    consumer = app.consumer
    # Faust keeps committed offsets privately; highwater is public.
    committed = getattr(consumer, "_committed_offset", {})
    lag = {}
    for tp in consumer.assignment():
        if tp.topic != topic:
            continue
        high = consumer.highwater(tp)
        if high is None:
            continue
        done = committed.get(tp)
        lag[tp.partition] = max(int(high) - (int(done) + 1 if done is not None else 0), 0)
    return lag


def consumer_flow(app: faust.App, topic: str) -> dict[str, object]:
    """Which of ``topic``'s assigned partitions the consumer fetches, and why not the
    others: paused by Faust (a rebalance, table recovery) or by a full bulk buffer."""
    consumer = app.consumer

    def mine(tps: object) -> list[int]:
        return sorted(tp.partition for tp in (tps or ()) if tp.topic == topic)  # type: ignore[attr-defined]

    buffers = getattr(consumer, "_buffers", {})
    buffer = buffers.get(topic)
    seeks = consumer_seeks(consumer)
    return {
        "flow_active": bool(getattr(consumer, "flow_active", True)),
        "fetching": mine(getattr(consumer, "_active_partitions", None)),
        "paused": mine(getattr(consumer, "_paused_partitions", None)),
        "buffer_paused": mine(getattr(consumer, "_buffered_partitions", None)),
        "buffered_records": len(buffer) if buffer is not None else 0,
        "reseeks": seeks["reseek"],
        "rewinds": seeks["rewind"],
    }


def consumer_seeks(consumer: object) -> dict[str, int]:
    """Seeks back to fetched records a rebalance kept from being delivered, by kind:
    ``reseek`` (the bulk topics to their committed offsets), ``rewind`` (a partition to
    its first record fetched while the flow stopped)."""
    return {"reseek": int(getattr(consumer, "reseeks", 0)),
            "rewind": int(getattr(consumer, "rewinds", 0))}


def prometheus_text(counters: Counters, writer: ClickHouseWriter, lag: dict[int, int],
                    seeks: Mapping[str, int]) -> str:
    s = writer.stats
    return "".join([
        metric("driftline_consumed_total", "counter", "Messages taken from the traces topic.",
               [({}, counters.consumed)]),
        metric("driftline_stored_total", "counter", "Valid traces written to ClickHouse.",
               [({}, counters.stored)]),
        metric("driftline_dead_lettered_total", "counter", "Messages sent to the dead-letter "
               "topic, by reason.", [({"reason": r}, n) for r, n in
                                     sorted(counters.dead_lettered.items())]),
        metric("driftline_skipped_spans_total", "counter", "Spans of OTel/OpenInference "
               "messages that are not LLM calls, ignored.", [({}, counters.skipped_spans)]),
        metric("driftline_truncated_total", "counter", "Traces with a text field cut to "
               "DRIFTLINE_MAX_TEXT_CHARS.", [({}, counters.truncated)]),
        metric("driftline_sampled_total", "counter", "Traces sampled for the scoring "
               "stage (judge, embeddings).", [({}, counters.sampled)]),
        metric("driftline_duplicates_total", "counter", "Traces whose trace_id this worker "
               "had stored recently (stored once: ClickHouse keeps one row per id).",
               [({}, counters.duplicates)]),
        metric("driftline_rerouted_total", "counter", "Traces that arrived on another "
               "partition than their segment's (unkeyed producers) and were sent there.",
               [({}, counters.rerouted)]),
        metric("driftline_embedded_total", "counter", "Sampled inputs embedded, by outcome.",
               [({"outcome": "ok"}, counters.embedded),
                ({"outcome": "error"}, counters.embed_errors)]),
        metric("driftline_judge_calls_total", "counter", "Judge results, by outcome.",
               [({"outcome": "ok"}, counters.judged - counters.judge_errors),
                ({"outcome": "error"}, counters.judge_errors)]),
        metric("driftline_judge_cost_usd_total", "counter", "Judge spend.",
               [({}, counters.judge_cost_usd)]),
        metric("driftline_drift_alarms_total", "counter", "Detector alarms.",
               [({}, counters.alarms)]),
        metric("driftline_batches_total", "counter", "Ingest batches processed.",
               [({}, counters.batches)]),
        metric("driftline_batch_size", "gauge", "Messages in the last ingest batch.",
               [({}, counters.last_batch_size)]),
        metric("driftline_restored_segments_total", "counter", "Segments whose detector "
               "state was restored from the changelog.", [({}, counters.restored_segments)]),
        metric("driftline_clickhouse_rows_total", "counter", "Rows inserted, by table.",
               [({"table": t}, n) for t, n in sorted(s.rows.items())]),
        metric("driftline_clickhouse_inserts_total", "counter", "Successful inserts.",
               [({}, s.inserts)]),
        metric("driftline_clickhouse_retries_total", "counter", "Failed inserts retried.",
               [({}, s.retries)]),
        metric("driftline_clickhouse_buffered_rows", "gauge", "Rows submitted, not yet "
               "stored (the writer's bounded buffer).", [({}, s.buffered_rows)]),
        metric("driftline_clickhouse_backpressure_seconds_total", "counter", "Time the "
               "consumer waited for room in the writer's buffer.",
               [({}, s.backpressure_seconds)]),
        metric("driftline_consumer_lag", "gauge", "Messages not yet stored, by partition.",
               [({"partition": str(p)}, n) for p, n in sorted(lag.items())]),
        metric("driftline_consumer_seeks_total", "counter", "Seeks back to records fetched "
               "but not delivered around a rebalance: reseek (the bulk topics to their "
               "committed offsets), rewind (a partition to its first undelivered record).",
               [({"kind": k}, n) for k, n in sorted(seeks.items())]),
    ])


def register_views(
    app: faust.App, writer: ClickHouseWriter, counters: Counters, *, sql_enabled: bool,
    traces_topic: str, alerter: SlackAlerter | None = None,
) -> None:
    @app.page("/health")
    class Health(View):
        """Ready when the ingest agent runs and ClickHouse answers."""

        async def get(self, request: Request) -> Response:
            if not counters.started:
                return _json(self, {"status": "starting"}, 503)
            try:
                await writer.query("SELECT 1")
            except Exception as exc:
                return _json(self, {"status": "clickhouse unavailable", "error": str(exc)}, 503)
            return _json(self, {"status": "ok"})

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            text = prometheus_text(counters, writer, consumer_lag(app, traces_topic),
                                   consumer_seeks(app.consumer))
            return self.bytes(text.encode(), content_type="text/plain; version=0.0.4")

    @app.page("/stats")
    class Stats(View):
        async def get(self, request: Request) -> Response:
            body = {**counters.as_dict(), "clickhouse": asdict(writer.stats),
                    "partitions": sorted(tp.partition for tp in app.consumer.assignment()
                                         if tp.topic == traces_topic),
                    "lag": {str(p): n for p, n in consumer_lag(app, traces_topic).items()},
                    "consumer": consumer_flow(app, traces_topic)}
            if alerter is not None:
                body["slack"] = asdict(alerter.stats)
            return _json(self, body)

    if not sql_enabled:
        return

    @app.page("/sql")
    class Sql(View):
        """Lets `driftline sql` query the embedded engine this process owns."""

        async def post(self, request: Request) -> Response:
            body = await request.json()
            query = body.get("query") if isinstance(body, dict) else None
            if not isinstance(query, str) or not query.strip():
                return _json(self, {"error": "POST a JSON object {\"query\": \"...\"}"}, 400)
            try:
                columns, rows = await writer.query(query)
            except Exception as exc:
                return _json(self, {"error": f"{type(exc).__name__}: {exc}"}, 400)
            return _json(self, {"columns": columns, "rows": rows})
