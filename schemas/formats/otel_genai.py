"""OpenTelemetry GenAI semantic conventions: a ``gen_ai.*`` span as a contract dict.

Current names: ``gen_ai.operation.name``, ``gen_ai.provider.name``,
``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.usage.input_tokens`` /
``output_tokens``, ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (role + parts),
``gen_ai.system_instructions``, ``gen_ai.conversation.id``. Older names still emitted by
many instrumentations: ``gen_ai.system``, ``gen_ai.prompt`` / ``gen_ai.completion`` (a
JSON string, indexed ``gen_ai.prompt.N.role|content`` attributes, or the
``gen_ai.content.prompt`` / ``gen_ai.content.completion`` span events),
``gen_ai.usage.prompt_tokens`` / ``completion_tokens``.

Only model calls become traces: spans of operations such as ``embeddings``,
``execute_tool`` or ``invoke_agent`` return ``None`` (skipped, counted by the caller).

>>> from schemas.formats.span import Span
>>> s = Span("ab", "cd", "chat gpt-4o", 1_700_000_000_000_000_000, None, None, {
...     "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
...     "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
...     "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"type": "text", '
...                               '"content": "hello"}], "finish_reason": "stop"}]'})
>>> c = to_contract(s)
>>> c["trace_id"], c["model"], c["input"], c["output"]
('ab:cd', 'gpt-4o', [{'role': 'user', 'content': 'hi'}],
 [{'role': 'assistant', 'content': 'hello'}])
"""

from __future__ import annotations

from typing import Any

import orjson

from schemas.formats.span import Span, _to_int

NAME = "otel_genai"
PREFIX = "gen_ai."
#: Operations that are one model call; other operations are not traces of the contract.
MODEL_CALLS = frozenset({"chat", "text_completion", "generate_content", "completion"})


def matches(attributes: dict[str, Any]) -> bool:
    return any(k.startswith(PREFIX) for k in attributes)


def to_contract(span: Span) -> dict[str, Any] | None:
    """The contract dict of a GenAI span, or ``None`` if it is not a model call."""
    a = span.attributes
    operation = a.get("gen_ai.operation.name")
    if operation is not None and (not isinstance(operation, str) or operation not in MODEL_CALLS):
        return None
    data = span.base_contract()
    request_model = _str(a.get("gen_ai.request.model"))
    response_model = _str(a.get("gen_ai.response.model"))
    data["model"] = request_model or response_model
    if request_model and response_model and response_model != request_model:
        # the served snapshot (gpt-4o-2024-08-06) of the requested alias (gpt-4o)
        data["model_version"] = response_model
    data["input_tokens"] = _first_int(a, "gen_ai.usage.input_tokens",
                                      "gen_ai.usage.prompt_tokens")
    data["output_tokens"] = _first_int(a, "gen_ai.usage.output_tokens",
                                       "gen_ai.usage.completion_tokens")
    data["session_id"] = _str(a.get("gen_ai.conversation.id")) or _str(a.get("session.id"))
    data["user_id"] = _str(a.get("user.id")) or _str(a.get("enduser.id"))
    if "error" not in data and (err := _str(a.get("error.type"))):
        data["error"] = err
    data["input"] = _input(span)
    data["output"] = _output(span)
    meta = {
        "provider": _str(a.get("gen_ai.provider.name")) or _str(a.get("gen_ai.system")),
        "operation": _str(operation),
        "otel.trace_id": span.trace_id or None,
        "otel.span_name": span.name or None,
    }
    data["metadata"] = {k: v for k, v in meta.items() if v}
    return {k: v for k, v in data.items() if v is not None}


def _input(span: Span) -> list[dict[str, str]] | str | None:
    a = span.attributes
    messages: list[dict[str, str]] = []
    system = a.get("gen_ai.system_instructions")
    if system is not None:
        text = _parts_text(_json(system))
        if text:
            messages.append({"role": "system", "content": text})
    current = a.get("gen_ai.input.messages")
    if current is not None:
        return messages + _messages(_json(current))
    old = _legacy(span, "gen_ai.prompt", "gen_ai.content.prompt")
    if old is None:
        return messages or None
    return messages + old if isinstance(old, list) else old


def _output(span: Span) -> list[dict[str, str]] | str | None:
    current = span.attributes.get("gen_ai.output.messages")
    if current is not None:
        return _messages(_json(current))
    return _legacy(span, "gen_ai.completion", "gen_ai.content.completion")


def _legacy(span: Span, key: str, event: str) -> list[dict[str, str]] | str | None:
    """``gen_ai.prompt`` / ``gen_ai.completion`` in the three ways they were emitted."""
    value = span.attributes.get(key)
    if value is None:
        for name, attrs in span.events:
            if name == event and key in attrs:
                value = attrs[key]
                break
    if value is not None:
        value = _json(value)
        return _messages(value) if isinstance(value, list) else _str(value)
    indexed = _indexed(span.attributes, key + ".")
    return indexed or None


def _indexed(attributes: dict[str, Any], prefix: str) -> list[dict[str, str]]:
    # OpenLLMetry style: gen_ai.prompt.0.role, gen_ai.prompt.0.content, ...
    rows: dict[int, dict[str, str]] = {}
    for key, value in attributes.items():
        if not key.startswith(prefix):
            continue
        index, _, fld = key[len(prefix):].partition(".")
        if index.isascii() and index.isdigit() and fld in ("role", "content"):
            rows.setdefault(int(index), {})[fld] = _text(value)
    return [{"role": r.get("role") or "user", "content": r.get("content", "")}
            for _, r in sorted(rows.items())]


def _messages(value: Any) -> list[dict[str, str]]:
    """Chat messages, whether with ``parts`` (current) or ``content`` (older)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        return []
    out = []
    for m in value:
        if not isinstance(m, dict):
            continue
        role = _str(m.get("role")) or "user"
        content = _parts_text(m.get("parts")) if "parts" in m else _text(m.get("content"))
        out.append({"role": role, "content": content})
    return out


def _parts_text(parts: Any) -> str:
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        return ""
    texts = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" or (kind is None and "content" in part):
            texts.append(_text(part.get("content")))
        elif kind == "tool_call":
            # kept short but present, so a drift towards tool use shows in the text
            args = part.get("arguments")
            texts.append(f"[tool_call {_text(part.get('name'))}({_text(args)})]")
        elif kind == "tool_call_response":
            texts.append(_text(part.get("response")))
    return "\n".join(t for t in texts if t)


def _json(value: Any) -> Any:
    """Structured attributes are JSON strings where the SDK cannot hold structure."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_int(attributes: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in attributes:
            value = attributes[key]
            if type(value) is str:
                # keep a bad value (e.g. "many") as is: validation names the field
                number = _to_int(value)
                return value if number is None else number
            return value
    return None
