"""Realistic messages of every format, shared by the format tests and the benchmark.

Attribute names follow the published conventions: OpenTelemetry GenAI semantic
conventions (current and the older ``gen_ai.prompt`` / ``gen_ai.usage.prompt_tokens``
generation) and OpenInference; the OTLP JSON request is what the Collector's Kafka
exporter writes with ``encoding: otlp_json`` (hex ids, int64 as strings).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
START_NS = int(NOW.timestamp() * 1e9) - 60_000_000_000  # a minute before NOW
END_NS = START_NS + 840_000_000  # 840 ms
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


def kv(key: str, value: Any) -> dict[str, Any]:
    """An OTLP JSON KeyValue."""
    return {"key": key, "value": _any(value)}


def _any(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 is a string in OTLP JSON
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any(v) for v in value]}}
    return {"stringValue": value}


def plain(i: int = 0) -> dict[str, Any]:
    return {
        "trace_id": f"c0ffee-{i:08d}", "timestamp": int(NOW.timestamp() * 1000) - 5000,
        "app": "support-bot", "route": "/chat", "model": "gpt-4o-mini",
        "model_version": "2024-07-18", "prompt_version": "v12", "tenant": "acme",
        "user_id": "u-42", "session_id": "s-7",
        "input": [{"role": "system", "content": "You are a concise banking assistant."},
                  {"role": "user", "content": "My card has not arrived yet, what can I do?"}],
        "output": "Cards usually arrive within 5 working days. I can order a new one.",
        "latency_ms": 812.5, "input_tokens": 41, "output_tokens": 17, "cost_usd": 0.00011,
        "feedback": "up", "metadata": {"region": "eu-west-1"},
    }


GENAI_CURRENT_ATTRS: dict[str, Any] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.request.max_tokens": 512,
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.id": "chatcmpl-AuR5iRkqGdKNg8KbAaZQHPEvBH3gJ",
    "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.usage.input_tokens": 41,
    "gen_ai.usage.output_tokens": 17,
    "gen_ai.conversation.id": "conv_5j66UpCpwteGg4YSxUnt7lPY",
    "server.address": "api.openai.com",
    "gen_ai.system_instructions": orjson.dumps(
        [{"type": "text", "content": "You are a concise banking assistant."}]).decode(),
    "gen_ai.input.messages": orjson.dumps([
        {"role": "user", "parts": [
            {"type": "text", "content": "My card has not arrived yet, what can I do?"}]},
    ]).decode(),
    "gen_ai.output.messages": orjson.dumps([
        {"role": "assistant", "parts": [
            {"type": "text",
             "content": "Cards usually arrive within 5 working days. I can order a new one."}],
         "finish_reason": "stop"},
    ]).decode(),
}

GENAI_LEGACY_ATTRS: dict[str, Any] = {
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-3.5-turbo",
    "gen_ai.response.model": "gpt-3.5-turbo-0125",
    "gen_ai.usage.prompt_tokens": 25,
    "gen_ai.usage.completion_tokens": 9,
    "llm.request.type": "chat",
    "gen_ai.prompt.0.role": "system",
    "gen_ai.prompt.0.content": "You are a concise banking assistant.",
    "gen_ai.prompt.1.role": "user",
    "gen_ai.prompt.1.content": "How do I activate my card?",
    "gen_ai.completion.0.role": "assistant",
    "gen_ai.completion.0.content": "Open the app, tap Cards, then Activate.",
    "gen_ai.completion.0.finish_reason": "stop",
}

OPENINFERENCE_ATTRS: dict[str, Any] = {
    "openinference.span.kind": "LLM",
    "llm.system": "openai",
    "llm.provider": "openai",
    "llm.model_name": "gpt-4o-mini-2024-07-18",
    "llm.invocation_parameters": '{"model": "gpt-4o-mini", "temperature": 0.2}',
    "input.value": '{"messages": [{"role": "user", "content": "Why was I charged a fee?"}]}',
    "input.mime_type": "application/json",
    "output.value": '{"choices": [{"message": {"content": "It is a foreign exchange fee."}}]}',
    "output.mime_type": "application/json",
    "llm.input_messages.0.message.role": "system",
    "llm.input_messages.0.message.content": "You are a concise banking assistant.",
    "llm.input_messages.1.message.role": "user",
    "llm.input_messages.1.message.content": "Why was I charged a fee?",
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.content": "It is a foreign exchange fee.",
    "llm.token_count.prompt": 30,
    "llm.token_count.completion": 8,
    "llm.token_count.total": 38,
    "llm.prompt_template.version": "fees-v3",
    "session.id": "sess-91",
    "user.id": "user-17",
    "metadata": '{"experiment": "b", "region": "eu-west-1"}',
}


def otlp_span(attrs: dict[str, Any], *, name: str = "chat gpt-4o-mini", span_id: str = SPAN_ID,
              error: bool = False) -> dict[str, Any]:
    """One span in OTLP JSON form."""
    span: dict[str, Any] = {
        "traceId": TRACE_ID, "spanId": span_id, "parentSpanId": "53995c3f42cd8ad8",
        "name": name, "kind": 3, "startTimeUnixNano": str(START_NS),
        "endTimeUnixNano": str(END_NS), "attributes": [kv(k, v) for k, v in attrs.items()],
        "status": {"code": 2, "message": "rate limited"} if error else {},
    }
    return span


def sdk_span(attrs: dict[str, Any], *, name: str = "ChatCompletion") -> dict[str, Any]:
    """One span as the OpenTelemetry Python SDK's ReadableSpan.to_json() prints it."""
    start = datetime.fromtimestamp(START_NS / 1e9, tz=UTC)
    end = datetime.fromtimestamp(END_NS / 1e9, tz=UTC)
    return {
        "name": name,
        "context": {"trace_id": "0x" + TRACE_ID, "span_id": "0x" + SPAN_ID,
                    "trace_state": "[]"},
        "kind": "SpanKind.INTERNAL", "parent_id": None,
        "start_time": start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "end_time": end.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "status": {"status_code": "OK"}, "attributes": attrs, "events": [], "links": [],
        "resource": {"attributes": {"service.name": "fee-explainer",
                                    "telemetry.sdk.language": "python"}, "schema_url": ""},
    }


def otlp_request(n_llm: int = 2, n_other: int = 2) -> dict[str, Any]:
    """An ExportTraceServiceRequest as the Collector's Kafka exporter writes it (otlp_json)."""
    spans = [otlp_span(GENAI_CURRENT_ATTRS, span_id=f"{i + 1:016x}") for i in range(n_llm)]
    for i in range(n_other):
        spans.append(otlp_span({"http.request.method": "POST", "url.path": "/v1/chat",
                                "http.response.status_code": 200},
                               name="POST /v1/chat", span_id=f"{0xff00 + i:016x}"))
    return {"resourceSpans": [{
        "resource": {"attributes": [kv("service.name", "support-bot"),
                                    kv("deployment.environment.name", "prod"),
                                    kv("telemetry.sdk.name", "opentelemetry")]},
        "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai_v2",
                                  "version": "2.1b0"}, "spans": spans}],
        "schemaUrl": "https://opentelemetry.io/schemas/1.37.0",
    }]}


def otlp_proto_bytes(n_llm: int = 2, n_other: int = 2) -> bytes:
    """The same request as :func:`otlp_request`, protobuf-encoded (``otlp_proto``)."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    req = otlp_request(n_llm, n_other)
    # the protobuf JSON mapping wants base64 ids where OTLP JSON has hex
    import base64
    for rs in req["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    s[k] = base64.b64encode(bytes.fromhex(s[k])).decode()
    msg = json_format.ParseDict(req, ExportTraceServiceRequest())
    return msg.SerializeToString()


def payloads() -> dict[str, bytes]:
    """One message per format, as bytes on the wire."""
    return {
        "plain": orjson.dumps(plain()),
        "otel_genai": orjson.dumps(otlp_span(GENAI_CURRENT_ATTRS)),
        "otel_genai_legacy": orjson.dumps(otlp_span(GENAI_LEGACY_ATTRS)),
        "openinference": orjson.dumps(sdk_span(OPENINFERENCE_ATTRS)),
        "otlp_json": orjson.dumps(otlp_request()),
        "otlp_proto": otlp_proto_bytes(),
    }


def test_every_payload_is_distinct_bytes() -> None:
    p = payloads()
    assert len(set(p.values())) == len(p)
    assert p["otlp_proto"][:1] == b"\n"  # field 1, length-delimited: resource_spans
