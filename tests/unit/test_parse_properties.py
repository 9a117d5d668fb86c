"""Whatever the bytes, parse_message returns traces/skips or raises TraceError with a reason.

Feeds random bytes, mutated real payloads of every format, JSON of the wrong shape and
types, huge fields, invalid UTF-8, deep nesting and empty messages through the real
parsing path. ``parser_error`` (the last-resort net) must never be needed.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.limits import Limits
from schemas.parse import REASONS, ParseResult, parse_message
from schemas.trace import Trace, TraceError
from tests.unit.test_formats_payloads import (
    GENAI_CURRENT_ATTRS,
    NOW,
    OPENINFERENCE_ATTRS,
    kv,
    otlp_span,
    payloads,
    plain,
)

LIMITS = Limits(max_message_bytes=200_000, max_text_chars=1000)
SEEDS = list(payloads().values())
CONTRACT_KEYS = [*plain(), "resourceSpans", "attributes", "traceId", "context"]
ATTR_KEYS = list(GENAI_CURRENT_ATTRS) + list(OPENINFERENCE_ATTRS) + [
    "gen_ai.prompt", "gen_ai.completion", "gen_ai.prompt.0.content", "service.name"]

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
           | st.floats(allow_nan=False) | st.text(max_size=30)
           | st.sampled_from(["", "0x", "1e400", "9999-12-31T23:59:59-01:00", "LLM", "chat",
                              "2026-11-22T11:00:00Z", "[", '[{"role": 1}]', "²"]))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(CONTRACT_KEYS) | st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)
any_values = st.recursive(
    scalars.map(lambda v: {"stringValue": v}) | scalars.map(lambda v: {"intValue": v})
    | scalars.map(lambda v: {"doubleValue": v}) | st.just({}),
    lambda inner: st.lists(inner, max_size=3).map(lambda v: {"arrayValue": {"values": v}})
    | st.lists(st.tuples(st.sampled_from(ATTR_KEYS), inner), max_size=3).map(
        lambda kvs: {"kvlistValue": {"values": [{"key": k, "value": v} for k, v in kvs]}}),
    max_leaves=10,
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del raw[pos:]
        elif op == "insert":
            raw[pos:pos] = draw(st.sampled_from([b"\xff", b'"', b"{", b"]", b"\x00", b",",
                                                 b"\xc3", b"\n", b"null", b"1e999"]))
        elif raw:
            del raw[pos]
    return bytes(raw)


@st.composite
def spans_with_junk(draw: st.DrawFn) -> bytes:
    base = draw(st.sampled_from([GENAI_CURRENT_ATTRS, OPENINFERENCE_ATTRS, {}]))
    span = otlp_span(base)
    extra = draw(st.lists(st.tuples(st.sampled_from(ATTR_KEYS), any_values), max_size=6))
    span["attributes"] += [{"key": k, "value": v} for k, v in extra]
    for key in draw(st.lists(st.sampled_from(["startTimeUnixNano", "endTimeUnixNano",
                                               "status", "traceId", "events", "attributes"]),
                             max_size=2)):
        span[key] = draw(json_values)
    if draw(st.booleans()):
        return orjson.dumps({"resourceSpans": [{"resource": {"attributes": [
            kv("service.name", "x")]}, "scopeSpans": [{"spans": [span, draw(json_values)]}]}]})
    return orjson.dumps(span)


@st.composite
def wrong_types(draw: st.DrawFn) -> bytes:
    obj: dict[str, Any] = plain()
    for key in draw(st.lists(st.sampled_from(list(obj)), max_size=4)):
        obj[key] = draw(json_values)
    if draw(st.booleans()):
        obj[draw(st.sampled_from(["input", "output", "error", "app"]))] = "é" * draw(
            st.integers(0, 150_000))
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:  # e.g. an int past 64 bits: send it as text
        return repr(obj).encode()


messages = (
    st.binary(max_size=300)
    | mutated()
    | spans_with_junk()
    | wrong_types()
    | json_values.map(lambda v: orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS))
    | st.sampled_from([b"", b" ", b"{}", b"[]", b"null", b"\xff\xfe\xfd", b"[" * 5000,
                       b'{"trace_id": "\xff\xfe"}', b'{"a":' * 2000, b"\n", b"\n\x00"])
)


def check(raw: bytes) -> None:
    try:
        result = parse_message(raw, limits=LIMITS, now=NOW)
    except TraceError as exc:
        assert exc.reason in REASONS and exc.reason != "parser_error", (exc.reason, exc.detail)
        assert exc.detail
        return
    assert isinstance(result, ParseResult)
    assert result.traces or result.skipped  # stored, or skipped and counted
    assert all(isinstance(t, Trace) for t in result.traces)
    for t in result.traces:
        assert len(t.input_text) <= LIMITS.max_text_chars + len(t.input) if isinstance(
            t.input, list) else len(t.input_text) <= LIMITS.max_text_chars
    for exc in result.rejected:
        assert exc.reason in REASONS and exc.reason != "parser_error"


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(messages)
def test_no_exception_escapes_and_every_message_is_accounted_for(raw: bytes) -> None:
    check(raw)


def test_every_format_still_parses_unmutated() -> None:
    for raw in SEEDS:
        assert parse_message(raw, limits=Limits(), now=NOW).traces


def test_mixed_stream_accounting_is_exact() -> None:
    """10,000 messages of every format plus garbage: each LLM span is stored or dead-lettered,
    each other span skipped, each broken message dead-lettered, by exact count."""
    from tests.unit.test_formats_payloads import otlp_request

    partly_bad = otlp_request(n_llm=2, n_other=1)
    partly_bad["resourceSpans"][0]["scopeSpans"][0]["spans"].append(
        otlp_span(GENAI_CURRENT_ATTRS | {"gen_ai.usage.output_tokens": "lots"}, span_id="b" * 16))
    kinds = [  # (message, stored, skipped, dead-lettered messages)
        *[(raw, 2 if name.startswith("otlp") else 1, 2 if name.startswith("otlp") else 0, 0)
          for name, raw in payloads().items()],
        (orjson.dumps(partly_bad), 2, 1, 1),
        (b"{not json", 0, 0, 1),
        (b"", 0, 0, 1),
        (orjson.dumps(plain() | {"timestamp": "2001-01-01T00:00:00Z"}), 0, 0, 1),
        (orjson.dumps(otlp_span({"http.request.method": "GET"})), 0, 1, 0),
    ]
    expected = [0, 0, 0]
    got = [0, 0, 0]
    for i in range(10_000):
        raw, stored, skipped, dead = kinds[i % len(kinds)]
        expected = [expected[0] + stored, expected[1] + skipped, expected[2] + dead]
        try:
            r = parse_message(raw, limits=Limits(), now=NOW)
        except TraceError:
            got[2] += 1
            continue
        got = [got[0] + len(r.traces), got[1] + r.skipped, got[2] + bool(r.rejected)]
    assert got == expected
