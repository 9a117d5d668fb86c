"""The single entry point from a Kafka message value to traces: :func:`parse_message`.

Detects the format per message (or takes it from ``fmt``), maps it to the plain
contract, applies :class:`~schemas.limits.Limits`, validates. Raises only
:class:`~schemas.trace.TraceError`, whose ``reason`` is one of :data:`REASONS`.

>>> r = parse_message(b'{"trace_id": "t1", "timestamp": 1700000000000, "input": "hi",'
...                   b' "output": "hello", "app": "bot"}', limits=Limits(max_age=None))
>>> [(t.trace_id, t.app, t.source_format) for t in r.traces], r.skipped
([('t1', 'bot', 'plain')], 0)
>>> parse_message(b'{"trace_id": "t2"}', limits=Limits()).traces
Traceback (most recent call last):
...
schemas.trace.TraceError: missing_field: timestamp: Field required; input: Field required; ...
>>> parse_message(b'\\xff', limits=Limits())
Traceback (most recent call last):
...
schemas.trace.TraceError: invalid_json: ...
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.formats import openinference, otel_genai, otlp_json, otlp_proto, plain
from schemas.formats.span import Span, from_json, is_span
from schemas.limits import Limits, truncate_text
from schemas.trace import Trace, TraceError, build_trace

#: Values of ``fmt``: ``auto`` detects per message; ``span`` is one span of either convention.
FORMATS = ("auto", "plain", "span", "otel_genai", "openinference", "otlp_json", "otlp_proto")

#: Every reason a TraceError from this module can carry (stable: counters and DLQ headers).
REASONS = (
    "too_large", "invalid_json", "not_an_object", "missing_field", "invalid_field",
    "timestamp_out_of_range", "no_llm_span", "unsupported_format", "invalid_protobuf",
    "parser_error",
)


@dataclass(slots=True)
class ParseResult:
    """What one message yielded.

    ``traces``: the valid model calls (one for plain JSON and single spans, any number for
    an OTLP request). ``skipped``: spans that are not model calls, ignored. ``rejected``:
    model-call spans of a multi-span message that failed validation while others passed;
    the caller dead-letters the message for them (re-ingesting its good traces later is
    harmless: ClickHouse keeps one row per ``trace_id``). A message whose every model
    call fails raises instead.
    """

    traces: list[Trace] = field(default_factory=list)
    skipped: int = 0
    rejected: list[TraceError] = field(default_factory=list)
    format: str = "plain"


def parse_message(
    raw: bytes, *, limits: Limits, fmt: str = "auto", now: datetime | None = None
) -> ParseResult:
    """Parse one Kafka message value; raise :class:`TraceError` for anything invalid.

    ``now`` is the clock for the timestamp window (tests pin it); default: the wall clock.
    """
    try:
        return _parse(raw, limits, fmt, now)
    except TraceError:
        raise
    except Exception as exc:
        # A bug, not bad input: still a counted dead letter rather than a dead worker,
        # under its own reason so it is noticed (the property test asserts it never occurs).
        raise TraceError("parser_error", f"{type(exc).__name__}: {exc}"[:500]) from None


def _parse(raw: bytes, limits: Limits, fmt: str, now: datetime | None) -> ParseResult:
    if raw is None:
        raw = b""
    if len(raw) > limits.max_message_bytes:
        raise TraceError("too_large", f"{len(raw)} bytes > limit {limits.max_message_bytes}")
    if fmt not in FORMATS:
        raise TraceError("unsupported_format", f"format {fmt!r} is not one of {FORMATS}")
    if fmt == "otlp_proto":
        if not otlp_proto.available():
            raise TraceError("unsupported_format", "otlp_proto needs opentelemetry-proto")
        spans = otlp_proto.decode(raw)
        if spans is None:
            raise TraceError("invalid_protobuf", "not an OTLP ExportTraceServiceRequest")
        return _from_spans(spans, "otlp_proto", limits, now)
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if fmt == "auto" and raw[:1] == b"\n":  # field 1 (resource_spans) of a protobuf
            spans = otlp_proto.decode(raw)
            if spans is not None:
                return _from_spans(spans, "otlp_proto", limits, now)
        raise TraceError("invalid_json", str(exc)) from None
    if not isinstance(obj, dict):
        raise TraceError("not_an_object", f"top-level JSON is {type(obj).__name__}")
    if fmt == "auto":
        fmt = "otlp_json" if otlp_json.matches(obj) else "span" if is_span(obj) else "plain"
    if fmt == "plain":
        # Every string of a plain message is a JSON string of it, so no longer than it.
        trace = _finish(plain.to_contract(obj), plain.NAME, limits, now, longest=len(raw))
        return ParseResult(traces=[trace], format=plain.NAME)
    if fmt == "otlp_json":
        return _from_spans(otlp_json.spans(obj), otlp_json.NAME, limits, now)
    return _from_spans([from_json(obj)], fmt, limits, now)


def _from_spans(
    spans: Iterable[Span], fmt: str, limits: Limits, now: datetime | None
) -> ParseResult:
    result = ParseResult(format=fmt)
    seen = 0
    for span in spans:
        seen += 1
        convention = _convention(span, fmt)
        contract = convention.to_contract(span) if convention is not None else None
        if contract is None:
            result.skipped += 1
            continue
        if fmt == "span":
            result.format = convention.NAME
        try:
            result.traces.append(_finish(contract, convention.NAME, limits, now))
        except TraceError as exc:
            result.rejected.append(exc)
    if not result.traces and result.rejected:
        first = result.rejected[0]
        if len(result.rejected) == 1 and result.skipped == 0:
            raise first
        raise TraceError(first.reason, f"{len(result.rejected)} LLM span(s) rejected, "
                                       f"{result.skipped} skipped; first: {first.detail}")
    if seen == 0:
        raise TraceError("no_llm_span", "the message holds no spans")
    return result


def _convention(span: Span, fmt: str) -> Any:
    if fmt == openinference.NAME:
        return openinference
    if fmt == otel_genai.NAME:
        return otel_genai
    a = span.attributes
    # A declared OpenInference kind wins: its instrumentations may also set gen_ai.* names.
    # Then gen_ai.* before OpenInference-only names, as OpenLLMetry mixes in llm.* keys.
    if openinference.declared(a):
        return openinference
    if otel_genai.matches(a):
        return otel_genai
    if openinference.matches(a):
        return openinference
    return None


def _finish(data: dict[str, Any], fmt: str, limits: Limits, now: datetime | None,
            longest: int | None = None) -> Trace:
    truncated = truncate_text(data, limits, longest)
    trace = build_trace(data)
    _check_time(trace, limits, now)
    trace._set_provenance(truncated, fmt)
    return trace


def _check_time(trace: Trace, limits: Limits, now: datetime | None) -> None:
    if limits.max_future_skew is None and limits.max_age is None:
        return
    now = now or datetime.now(UTC)
    ts = trace.timestamp
    try:
        if limits.max_future_skew is not None and ts > now + limits.max_future_skew:
            raise TraceError("timestamp_out_of_range",
                             f"{ts.isoformat()} is more than {limits.max_future_skew} ahead")
        if limits.max_age is not None and ts < now - limits.max_age:
            raise TraceError("timestamp_out_of_range",
                             f"{ts.isoformat()} is older than {limits.max_age}")
    except OverflowError:  # now ± a huge configured window
        return
