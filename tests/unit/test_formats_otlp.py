import orjson
import pytest

from schemas.formats import otlp_proto
from schemas.limits import Limits
from schemas.parse import parse_message
from schemas.trace import TraceError
from tests.unit.test_formats_payloads import (
    GENAI_CURRENT_ATTRS,
    NOW,
    OPENINFERENCE_ATTRS,
    TRACE_ID,
    otlp_proto_bytes,
    otlp_request,
    otlp_span,
)


def parse(raw: bytes, **kw: object):
    return parse_message(raw, limits=Limits(), now=NOW, **kw)


def test_export_request_every_llm_span_is_a_trace_others_skipped() -> None:
    req = otlp_request(n_llm=3, n_other=4)
    req["resourceSpans"][0]["scopeSpans"][0]["spans"].append(
        otlp_span(OPENINFERENCE_ATTRS, name="ChatCompletion", span_id="aa" * 8))
    r = parse(orjson.dumps(req))
    assert (r.format, len(r.traces), r.skipped, r.rejected) == ("otlp_json", 4, 4, [])
    assert len({t.trace_id for t in r.traces}) == 4
    assert all(t.app == "support-bot" for t in r.traces)
    assert {t.source_format for t in r.traces} == {"otel_genai", "openinference"}
    assert r.traces[0].trace_id == f"{TRACE_ID}:{1:016x}"


def test_partly_bad_request_keeps_the_good_and_reports_the_bad() -> None:
    req = otlp_request(n_llm=2, n_other=1)
    bad = otlp_span(GENAI_CURRENT_ATTRS | {"gen_ai.usage.input_tokens": -5}, span_id="bb" * 8)
    req["resourceSpans"][0]["scopeSpans"][0]["spans"].append(bad)
    r = parse(orjson.dumps(req))
    assert (len(r.traces), r.skipped, [e.reason for e in r.rejected]) == (2, 1,
                                                                          ["invalid_field"])


def test_all_bad_or_empty_requests_raise() -> None:
    req = otlp_request(n_llm=0, n_other=0)
    with pytest.raises(TraceError) as info:
        parse(orjson.dumps(req))
    assert info.value.reason == "no_llm_span"
    req = otlp_request(n_llm=1, n_other=0)
    req["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"] = "1"
    with pytest.raises(TraceError) as info:
        parse(orjson.dumps(req))
    assert info.value.reason == "timestamp_out_of_range"


def test_only_other_spans_is_all_skipped() -> None:
    r = parse(orjson.dumps(otlp_request(n_llm=0, n_other=3)))
    assert (r.traces, r.skipped) == ([], 3)


@pytest.mark.skipif(not otlp_proto.available(), reason="opentelemetry-proto not installed")
def test_protobuf_request_same_traces_as_json() -> None:
    from_proto = parse(otlp_proto_bytes(3, 2))
    from_json = parse(orjson.dumps(otlp_request(3, 2)))
    assert (from_proto.format, from_proto.skipped) == ("otlp_proto", 2)
    assert [t.model_dump() for t in from_proto.traces] == [t.model_dump()
                                                           for t in from_json.traces]
    assert parse(otlp_proto_bytes(1, 0), fmt="otlp_proto").traces


def test_binary_garbage_is_invalid_json_not_a_proto() -> None:
    for raw in (b"\n\x00", b"\n\x02\x08\x01", b"\n\xff\xff"):
        with pytest.raises(TraceError) as info:
            parse(raw)
        assert info.value.reason == "invalid_json"


def test_topic_configured_as_protobuf_refuses_json() -> None:
    with pytest.raises(TraceError) as info:
        parse(orjson.dumps(otlp_request()), fmt="otlp_proto")
    assert info.value.reason == "invalid_protobuf"
