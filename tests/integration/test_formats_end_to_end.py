"""A mixed stream of every producer format plus garbage through the real broker and worker:
every LLM span is stored once, every other span skipped, every broken message
dead-lettered, by exact count."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from pipeline.producer import publish
from pipeline.sql_client import worker_query
from pipeline.topics import ensure_topics
from tests.conftest import wait_for
from tests.integration.conftest import drain_topic, make_settings, scalar, stats
from tests.unit.test_formats_payloads import (
    GENAI_CURRENT_ATTRS,
    GENAI_LEGACY_ATTRS,
    OPENINFERENCE_ATTRS,
    otlp_request,
    otlp_span,
    plain,
    sdk_span,
)

N = 10_000


def _proto(request: dict[str, Any]) -> bytes:
    req = copy.deepcopy(request)
    for rs in req["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    s[k] = base64.b64encode(bytes.fromhex(s[k])).decode()
    return json_format.ParseDict(req, ExportTraceServiceRequest()).SerializeToString()


def _with_trace_id(request: dict[str, Any], trace_id: str) -> dict[str, Any]:
    for rs in request["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                s["traceId"] = trace_id
    return request


def message(i: int) -> tuple[bytes, int, int, int]:
    """(bytes, LLM spans stored, spans skipped, dead letters) of the i-th message."""
    tid = f"{i + 1:032x}"
    kind = i % 9
    if kind == 0:
        return orjson.dumps(plain(i)), 1, 0, 0
    if kind == 1:
        return orjson.dumps(otlp_span(GENAI_CURRENT_ATTRS) | {"traceId": tid}), 1, 0, 0
    if kind == 2:
        return orjson.dumps(otlp_span(GENAI_LEGACY_ATTRS) | {"traceId": tid}), 1, 0, 0
    if kind == 3:
        span = sdk_span(OPENINFERENCE_ATTRS)
        span["context"]["trace_id"] = "0x" + tid
        return orjson.dumps(span), 1, 0, 0
    if kind == 4:
        return orjson.dumps(_with_trace_id(otlp_request(2, 2), tid)), 2, 2, 0
    if kind == 5:
        return _proto(_with_trace_id(otlp_request(2, 2), tid)), 2, 2, 0
    if kind == 6:
        return orjson.dumps(otlp_span({"http.request.method": "GET"}) | {"traceId": tid}), 0, 1, 0
    if kind == 7:
        return b'{"trace_id": "half', 0, 0, 1
    return b"\x00\x01 not a trace", 0, 0, 1


def test_mixed_formats_are_accounted_for_exactly(broker: str, tmp_path: Path,
                                                 worker_factory: Any) -> None:
    # Fixed payload timestamps: the age window is off so the test does not expire.
    settings = make_settings(tmp_path, broker, max_age=0)
    ensure_topics(settings)
    batch = [message(i) for i in range(N)]
    stored = sum(m[1] for m in batch)
    skipped = sum(m[2] for m in batch)
    dead = sum(m[3] for m in batch)
    # Collector-style: no key, so messages land on any partition.
    assert publish(settings, ((None, m[0]) for m in batch)).delivered == N

    worker_factory(settings)
    # Unkeyed traces found on another partition than their segment's are sent there
    # (keyed) and consumed a second time.
    wait_for(lambda: stats(settings)["consumed"] - stats(settings)["rerouted"] == N,
             timeout=240, what=f"{N} messages consumed")
    wait_for(lambda: scalar(settings, "SELECT count() FROM traces FINAL") == stored,
             timeout=60, what=f"{stored} traces stored")
    # The agent counts dead letters once Kafka has acknowledged them.
    wait_for(lambda: stats(settings)["dead_lettered_total"] >= dead, timeout=60,
             what=f"{dead} dead letters delivered")
    final = stats(settings)
    assert final["skipped_spans"] == skipped
    assert final["dead_lettered_total"] == dead
    assert len(drain_topic(settings, settings.dlq_topic, dead)) == dead
    apps = scalar(settings, "SELECT groupUniqArray(app) FROM traces FINAL")
    assert {"support-bot", "fee-explainer"} <= set(apps)
    # Each segment's traces were processed on one partition, so by one detector.
    assert final["rerouted"] > 0
    assert scalar(settings, "SELECT max(p) FROM (SELECT uniqExact(kafka_partition) AS p "
                            "FROM traces FINAL GROUP BY segment)") == 1
    # The per-batch counters in ClickHouse tell the same story.
    wait_for(lambda: scalar(settings, "SELECT sum(consumed) FROM ingest_batches")
             == N + final["rerouted"], timeout=30, what="ingest_batches complete")
    _, [[rows, dead_rows, skipped_rows, rerouted]] = worker_query(
        settings, "SELECT sum(stored), sum(dead_lettered), "
                  "sum(skipped_spans), sum(rerouted) FROM ingest_batches")
    assert (rows, dead_rows, skipped_rows, rerouted) == (stored, dead, skipped,
                                                         final["rerouted"])
    formats = scalar(settings, "SELECT groupUniqArray(source_format) FROM traces FINAL")
    # An OTLP request's spans are stored as the convention they follow.
    assert sorted(formats) == ["openinference", "otel_genai", "plain"]
