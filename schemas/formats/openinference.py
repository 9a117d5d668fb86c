"""OpenInference semantic conventions (Arize Phoenix): an LLM span as a contract dict.

Names: ``openinference.span.kind`` (``LLM`` for a model call), ``input.value`` /
``output.value``, ``llm.model_name``, ``llm.provider`` / ``llm.system``,
``llm.input_messages.N.message.role|content`` (or ``...message.contents.M.
message_content.text``), ``llm.output_messages...``, ``llm.token_count.prompt|completion|
total``, ``llm.prompt_template.version``, ``session.id``, ``user.id``, ``metadata`` (a
JSON string). Spans of other kinds (CHAIN, RETRIEVER, TOOL, AGENT, EMBEDDING, ...)
return ``None``: skipped, counted by the caller.

>>> from schemas.formats.span import Span
>>> s = Span("ab", "cd", "ChatCompletion", 1_700_000_000_000_000_000, None, None, {
...     "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
...     "llm.input_messages.0.message.role": "user",
...     "llm.input_messages.0.message.content": "hi",
...     "llm.output_messages.0.message.role": "assistant",
...     "llm.output_messages.0.message.content": "hello", "llm.token_count.prompt": 3})
>>> c = to_contract(s)
>>> c["model"], c["input"], c["output"], c["input_tokens"]
('gpt-4o-mini', [{'role': 'user', 'content': 'hi'}], [{'role': 'assistant', 'content': 'hello'}], 3)
"""

from __future__ import annotations

from typing import Any

from schemas.formats.otel_genai import _first_int, _json, _str, _text
from schemas.formats.span import Span

NAME = "openinference"
KIND = "openinference.span.kind"
_INPUT = "llm.input_messages."
_OUTPUT = "llm.output_messages."


#: Prefixes of attributes only OpenInference sets (OpenLLMetry also uses ``llm.request.type``,
#: ``llm.usage.*``, so a bare ``llm.`` prefix says nothing).
_OWN_PREFIXES = ("llm.model_name", "llm.input_messages.", "llm.output_messages.",
                 "llm.token_count.", "llm.invocation_parameters")


def declared(attributes: dict[str, Any]) -> bool:
    """The span says it is OpenInference."""
    return KIND in attributes


def matches(attributes: dict[str, Any]) -> bool:
    """The span says so, or carries attributes only OpenInference uses."""
    return KIND in attributes or any(k.startswith(_OWN_PREFIXES) for k in attributes)


def to_contract(span: Span) -> dict[str, Any] | None:
    """The contract dict of an OpenInference LLM span, or ``None`` for other kinds."""
    a = span.attributes
    kind = a.get(KIND)
    if kind is not None and (not isinstance(kind, str) or kind.upper() != "LLM"):
        return None
    if kind is None and not any(k.startswith(_OWN_PREFIXES) for k in a):
        return None  # input.value alone is any step of a chain, not a model call
    data = span.base_contract()
    requested = _str(a.get("llm.request.model_name"))
    served = _str(a.get("llm.response.model_name")) or _str(a.get("llm.model_name"))
    data["model"] = requested or served
    if requested and served and served != requested:
        data["model_version"] = served
    inputs, outputs = _all_messages(a)
    data["input"] = inputs or _value(a, "input.value")
    data["output"] = outputs or _value(a, "output.value")
    data["input_tokens"] = _first_int(a, "llm.token_count.prompt")
    data["output_tokens"] = _first_int(a, "llm.token_count.completion")
    data["session_id"] = _str(a.get("session.id"))
    data["user_id"] = _str(a.get("user.id"))
    data["prompt_version"] = _str(a.get("llm.prompt_template.version"))
    meta = _metadata(a.get("metadata"))
    for key, value in (("provider", _str(a.get("llm.provider")) or _str(a.get("llm.system"))),
                       ("otel.trace_id", span.trace_id or None),
                       ("otel.span_name", span.name or None)):
        if value:
            meta.setdefault(key, value)
    data["metadata"] = meta
    return {k: v for k, v in data.items() if v is not None}


def _value(attributes: dict[str, Any], key: str) -> str | None:
    value = attributes.get(key)
    return None if value is None else _text(value)


def _all_messages(
    attributes: dict[str, Any],
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Input and output messages from flattened ``llm.{input,output}_messages.N...`` keys.

    One pass over the attributes for both: this is on the worker's hot path.
    """
    rows: tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]] = ({}, {})
    for key, value in attributes.items():
        if key.startswith(_INPUT):
            side, rest = rows[0], key[len(_INPUT):]
        elif key.startswith(_OUTPUT):
            side, rest = rows[1], key[len(_OUTPUT):]
        else:
            continue
        index, _, fld = rest.partition(".")
        if not (index.isascii() and index.isdigit()):
            continue
        row = side.setdefault(int(index), {})
        if fld == "message.role":
            row["role"] = value
        elif fld == "message.content":
            row["content"] = _text(value)
        elif fld.startswith("message.contents.") and fld.endswith(".message_content.text"):
            part = fld[len("message.contents."):].partition(".")[0]
            if part.isascii() and part.isdigit():
                row.setdefault("parts", {})[int(part)] = _text(value)
    return _rows(rows[0]), _rows(rows[1])


def _rows(rows: dict[int, dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for _, row in sorted(rows.items()):
        content = row.get("content")
        if content is None:
            content = "\n".join(t for _, t in sorted(row.get("parts", {}).items()))
        out.append({"role": _str(row.get("role")) or "user", "content": content})
    return out


def _metadata(value: Any) -> dict[str, str]:
    value = _json(value)
    if not isinstance(value, dict):
        return {}
    # the contract's metadata is a string map; nested values keep their JSON text
    return {str(k): v if isinstance(v, str) else _text(v) for k, v in value.items()}
