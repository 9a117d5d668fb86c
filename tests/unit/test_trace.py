from datetime import UTC, datetime

import orjson
import pytest

from schemas.trace import TraceError, build_trace, parse_trace


def dump(**fields: object) -> bytes:
    base: dict[str, object] = {"trace_id": "t", "timestamp": 1_700_000_000_000,
                               "input": "q", "output": "a"}
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not None})


def test_plain_text_and_messages() -> None:
    t = parse_trace(dump(input=[{"role": "system", "content": "be brief"},
                                {"role": "user", "content": "hi"}], output="hello"))
    assert t.input_text == "be brief\nhi"
    assert t.output_text == "hello"


@pytest.mark.parametrize(("value", "expected"), [
    (1_700_000_000_000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ("2023-11-14T22:13:20Z", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ("2023-11-14T23:13:20+01:00", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ("2023-11-14T22:13:20", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
])
def test_timestamps_become_utc(value: object, expected: datetime) -> None:
    assert parse_trace(dump(timestamp=value)).timestamp == expected


def test_optional_fields_and_feedback_words() -> None:
    t = parse_trace(dump(app="bot", model="m", latency_ms=12.5, input_tokens=3,
                         feedback="down", metadata={"k": "v"}, unknown_field=1))
    assert (t.app, t.model, t.latency_ms, t.input_tokens, t.feedback) == ("bot", "m", 12.5, 3,
                                                                          -1.0)
    assert t.metadata == {"k": "v"}
    assert t.segment_key(("app", "model")) == "bot|m"
    assert t.segment_key(("app", "tenant")) == "bot|-"


@pytest.mark.parametrize(("raw", "reason"), [
    (b"{not json", "invalid_json"),
    (b"\xff\xfe", "invalid_json"),
    (b"[1, 2]", "not_an_object"),
    (b'"text"', "not_an_object"),
    (dump(output=None), "missing_field"),
    (dump(trace_id=""), "invalid_field"),
    (dump(timestamp="yesterday"), "invalid_field"),
    (dump(timestamp=True), "invalid_field"),
    (dump(latency_ms=-1), "invalid_field"),
    (dump(input=42), "invalid_field"),
    (dump(metadata={"k": [1]}), "invalid_field"),
    # what the traces table's UInt32 column holds, or the insert would fail for ever
    (dump(input_tokens=2**32), "invalid_field"),
])
def test_invalid_traces_have_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(TraceError) as info:
        parse_trace(raw)
    assert info.value.reason == reason
    assert info.value.detail


def test_size_limit() -> None:
    raw = dump(output="x" * 5000)
    with pytest.raises(TraceError, match="too_large"):
        parse_trace(raw, max_bytes=1024)
    assert parse_trace(raw, max_bytes=len(raw)).output_text == "x" * 5000


@pytest.mark.parametrize("field", ["latency_ms", "cost_usd"])
def test_non_finite_numbers_are_refused(field: str) -> None:
    # No JSON number is infinite, but span attributes can be (OTLP's "Infinity" double).
    data = orjson.loads(dump())
    data[field] = float("inf")
    with pytest.raises(TraceError) as info:
        build_trace(data)
    assert info.value.reason == "invalid_field" and field in info.value.detail
    data[field] = 2.5
    assert getattr(build_trace(data), field) == 2.5
