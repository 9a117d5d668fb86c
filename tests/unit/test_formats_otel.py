import orjson
import pytest

from schemas.limits import Limits
from schemas.parse import parse_message
from schemas.trace import TraceError
from tests.unit.test_formats_payloads import (
    GENAI_CURRENT_ATTRS,
    GENAI_LEGACY_ATTRS,
    NOW,
    SPAN_ID,
    TRACE_ID,
    otlp_span,
    sdk_span,
)


def parse(obj: dict, **kw: object):
    return parse_message(orjson.dumps(obj), limits=Limits(), now=NOW, **kw)


def test_current_genai_span() -> None:
    r = parse(otlp_span(GENAI_CURRENT_ATTRS))
    assert (r.format, r.skipped) == ("otel_genai", 0)
    (t,) = r.traces
    assert t.trace_id == f"{TRACE_ID}:{SPAN_ID}"
    assert (t.model, t.model_version) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert [m.role for m in t.input] == ["system", "user"]
    assert t.input[0].content == "You are a concise banking assistant."
    assert t.output_text.startswith("Cards usually arrive")
    assert (t.input_tokens, t.output_tokens, t.latency_ms) == (41, 17, 840.0)
    assert t.session_id == "conv_5j66UpCpwteGg4YSxUnt7lPY"
    assert t.metadata["provider"] == "openai" and t.metadata["operation"] == "chat"
    assert t.timestamp.isoformat() == "2026-11-22T11:59:00+00:00"
    assert t.error is None and t.source_format == "otel_genai"


def test_older_genai_names_indexed_attributes() -> None:
    (t,) = parse(otlp_span(GENAI_LEGACY_ATTRS)).traces
    assert [m.content for m in t.input] == ["You are a concise banking assistant.",
                                           "How do I activate my card?"]
    assert t.output_text == "Open the app, tap Cards, then Activate."
    assert (t.input_tokens, t.output_tokens, t.metadata["provider"]) == (25, 9, "openai")


def test_older_genai_prompt_as_json_string_and_as_events() -> None:
    attrs = {"gen_ai.system": "anthropic", "gen_ai.request.model": "claude-3-haiku",
             "gen_ai.prompt": '[{"role": "user", "content": "Block my card"}]',
             "gen_ai.completion": "Done, your card is blocked."}
    (t,) = parse(otlp_span(attrs)).traces
    assert (t.input_text, t.output_text) == ("Block my card", "Done, your card is blocked.")
    span = otlp_span({"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4"})
    span["events"] = [
        {"name": "gen_ai.content.prompt", "timeUnixNano": span["startTimeUnixNano"],
         "attributes": [{"key": "gen_ai.prompt",
                         "value": {"stringValue": '[{"role": "user", "content": "hi"}]'}}]},
        {"name": "gen_ai.content.completion", "timeUnixNano": span["endTimeUnixNano"],
         "attributes": [{"key": "gen_ai.completion",
                         "value": {"stringValue": '[{"role": "assistant", "content": "hey"}]'}}]},
    ]
    (t,) = parse(span).traces
    assert (t.input_text, t.output_text) == ("hi", "hey")


def test_sdk_json_shape_and_error_status() -> None:
    span = sdk_span(GENAI_CURRENT_ATTRS)
    span["status"] = {"status_code": "ERROR", "description": "429 Too Many Requests"}
    (t,) = parse(span).traces
    assert t.trace_id == f"{TRACE_ID}:{SPAN_ID}" and t.app == "fee-explainer"
    assert t.error == "429 Too Many Requests"
    assert t.latency_ms == pytest.approx(840.0, abs=0.01)
    (t,) = parse(otlp_span(GENAI_CURRENT_ATTRS, error=True)).traces
    assert t.error == "rate limited"


def test_tool_calls_appear_in_the_text() -> None:
    attrs = GENAI_CURRENT_ATTRS | {"gen_ai.output.messages": orjson.dumps([
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1",
                                         "name": "get_card_status",
                                         "arguments": {"card": "1234"}}],
         "finish_reason": "tool_call"}]).decode()}
    (t,) = parse(otlp_span(attrs)).traces
    assert t.output_text == '[tool_call get_card_status({"card":"1234"})]'


@pytest.mark.parametrize("operation", ["embeddings", "execute_tool", "invoke_agent"])
def test_non_model_call_operations_are_skipped(operation: str) -> None:
    r = parse(otlp_span({"gen_ai.operation.name": operation,
                         "gen_ai.request.model": "text-embedding-3-small"}))
    assert (r.traces, r.skipped) == ([], 1)


def test_span_without_llm_attributes_is_skipped() -> None:
    r = parse(otlp_span({"http.request.method": "GET"}, name="GET /health"))
    assert (r.traces, r.skipped) == ([], 1)


def test_content_capture_off_is_a_missing_field() -> None:
    attrs = {k: v for k, v in GENAI_CURRENT_ATTRS.items() if "messages" not in k}
    with pytest.raises(TraceError) as info:
        parse(otlp_span(attrs))
    assert info.value.reason == "missing_field"


def test_forced_format() -> None:
    span = otlp_span(GENAI_CURRENT_ATTRS)
    assert parse(span, fmt="otel_genai").traces
    assert parse(span, fmt="openinference").skipped == 1  # no OpenInference kind: not LLM
