from datetime import timedelta

import orjson
import pytest

from schemas.limits import Limits
from schemas.parse import parse_message
from schemas.trace import TraceError
from tests.unit.test_formats_payloads import NOW, plain

LIMITS = Limits()


def parse(obj: object, limits: Limits = LIMITS, **kw: object):
    raw = obj if isinstance(obj, bytes) else orjson.dumps(obj)
    return parse_message(raw, limits=limits, now=NOW, **kw)


def test_plain_contract_maps_every_field() -> None:
    r = parse(plain(3))
    assert (r.format, r.skipped, r.rejected) == ("plain", 0, [])
    (t,) = r.traces
    assert (t.trace_id, t.app, t.route, t.model, t.model_version, t.prompt_version, t.tenant,
            t.user_id, t.session_id) == ("c0ffee-00000003", "support-bot", "/chat",
                                         "gpt-4o-mini", "2024-07-18", "v12", "acme", "u-42",
                                         "s-7")
    assert (t.latency_ms, t.input_tokens, t.output_tokens, t.feedback) == (812.5, 41, 17, 1.0)
    assert t.truncated_fields == () and t.source_format == "plain"


def test_long_text_is_truncated_and_flagged_not_rejected() -> None:
    obj = plain() | {"output": "x" * 50, "error": "e" * 50, "model": "m" * 20,
                     "metadata": {"k": "v" * 50}}
    obj["input"][1]["content"] = "y" * 100
    (t,) = parse(obj, Limits(max_text_chars=40, max_label_chars=12)).traces
    assert t.output_text == "x" * 40 and t.error == "e" * 40 and t.model == "m" * 12
    assert len(t.input_text) <= 41  # one budget for the whole chat, plus the joining newline
    assert t.metadata["k"] == "v" * 40
    assert set(t.truncated_fields) == {"input", "output", "error", "model", "metadata"}


@pytest.mark.parametrize("delta", [timedelta(days=2), -timedelta(days=31)])
def test_timestamps_outside_the_window_are_refused(delta: timedelta) -> None:
    obj = plain() | {"timestamp": (NOW + delta).isoformat()}
    with pytest.raises(TraceError) as info:
        parse(obj)
    assert info.value.reason == "timestamp_out_of_range"
    assert parse(obj, Limits(max_future_skew=None, max_age=None)).traces


@pytest.mark.parametrize(("raw", "reason"), [
    (b"", "invalid_json"),
    (b"{not json", "invalid_json"),
    (b"\xff\xfe", "invalid_json"),
    (b"[1, 2]", "not_an_object"),
    (b'{"trace_id": "t"}', "missing_field"),
    (orjson.dumps(plain() | {"timestamp": 10**18}), "timestamp_out_of_range"),
    (orjson.dumps(plain() | {"timestamp": "9999-12-31T23:59:59-01:00"}),
     "timestamp_out_of_range"),
    (orjson.dumps(plain() | {"input_tokens": -1}), "invalid_field"),
])
def test_invalid_plain_messages_have_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(TraceError) as info:
        parse(raw)
    assert info.value.reason == reason and info.value.detail


def test_size_limit_and_unknown_format() -> None:
    raw = orjson.dumps(plain())
    with pytest.raises(TraceError, match="too_large"):
        parse(raw, Limits(max_message_bytes=100))
    with pytest.raises(TraceError, match="unsupported_format"):
        parse(raw, fmt="yaml")
