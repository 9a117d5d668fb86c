"""OTLP protobuf ``ExportTraceServiceRequest``: the Collector's Kafka exporter default
(``encoding: otlp_proto``). Decoded with ``opentelemetry-proto``, imported on first use.
"""

from __future__ import annotations

import base64
from typing import Any

from schemas.formats.span import Span

NAME = "otlp_proto"

_request_type: Any = None


def decode(raw: bytes) -> list[Span] | None:
    """The spans of a protobuf request, or ``None`` if ``raw`` is not one.

    Protobuf parses many random byte strings without complaint, so a request counts only
    if at least one span carries a 16-byte trace id, as every real span does.
    """
    request_type = _load()
    if request_type is None:
        return None
    request = request_type()
    try:
        request.ParseFromString(raw)
    except Exception:  # DecodeError, or RecursionError on hostile nesting
        return None
    out = []
    for rs in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(Span(
                    trace_id=s.trace_id.hex(),
                    span_id=s.span_id.hex(),
                    name=s.name,
                    start_ns=s.start_time_unix_nano or None,
                    end_ns=s.end_time_unix_nano or None,
                    error=(s.status.message or "error") if s.status.code == 2 else None,
                    attributes={kv.key: _value(kv.value) for kv in s.attributes},
                    resource=resource,
                    events=[(e.name, {kv.key: _value(kv.value) for kv in e.attributes})
                            for e in s.events],
                ))
    if not any(len(s.trace_id) == 32 for s in out):
        return None
    return out


def available() -> bool:
    return _load() is not None


def _load() -> Any:
    global _request_type
    if _request_type is None:
        try:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                ExportTraceServiceRequest,
            )
        except ImportError:
            _request_type = False
        else:
            _request_type = ExportTraceServiceRequest
    return _request_type or None


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, kind)
