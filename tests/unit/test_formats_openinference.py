import orjson

from schemas.limits import Limits
from schemas.parse import parse_message
from tests.unit.test_formats_payloads import NOW, OPENINFERENCE_ATTRS, otlp_span, sdk_span


def parse(obj: dict):
    return parse_message(orjson.dumps(obj), limits=Limits(), now=NOW)


def test_llm_span_maps_messages_tokens_and_context() -> None:
    r = parse(sdk_span(OPENINFERENCE_ATTRS))
    assert r.format == "openinference"
    (t,) = r.traces
    assert [(m.role, m.content) for m in t.input] == [
        ("system", "You are a concise banking assistant."), ("user", "Why was I charged a fee?")]
    assert t.output_text == "It is a foreign exchange fee."
    assert (t.model, t.input_tokens, t.output_tokens) == ("gpt-4o-mini-2024-07-18", 30, 8)
    assert (t.session_id, t.user_id, t.prompt_version) == ("sess-91", "user-17", "fees-v3")
    assert t.metadata["experiment"] == "b" and t.metadata["provider"] == "openai"
    assert t.app == "fee-explainer"


def test_input_value_when_no_messages_and_contents_parts() -> None:
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "llama-3.1-8b",
             "input.value": "Translate: bonjour", "input.mime_type": "text/plain",
             "llm.output_messages.0.message.role": "assistant",
             "llm.output_messages.0.message.contents.0.message_content.type": "text",
             "llm.output_messages.0.message.contents.0.message_content.text": "hello"}
    (t,) = parse(otlp_span(attrs)).traces
    assert (t.input_text, t.output_text) == ("Translate: bonjour", "hello")


def test_other_span_kinds_are_skipped() -> None:
    for kind in ("CHAIN", "RETRIEVER", "TOOL", "EMBEDDING", "AGENT"):
        r = parse(otlp_span({"openinference.span.kind": kind, "input.value": "q",
                             "output.value": "a"}))
        assert (r.traces, r.skipped) == ([], 1)


def test_requested_and_served_model() -> None:
    attrs = OPENINFERENCE_ATTRS | {"llm.request.model_name": "gpt-4o-mini",
                                   "llm.response.model_name": "gpt-4o-mini-2024-07-18"}
    (t,) = parse(sdk_span(attrs)).traces
    assert (t.model, t.model_version) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
