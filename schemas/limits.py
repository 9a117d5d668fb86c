"""Input limits of the parser, and how text limits are applied to a contract dict.

A message over ``max_message_bytes`` is refused (``too_large``); text over
``max_text_chars`` is cut and the field named in ``Trace.truncated_fields``, never
refused; a timestamp outside ``[now - max_age, now + max_future_skew]`` is refused
(``timestamp_out_of_range``). Duplicate ``trace_id`` values are not the parser's
business: ClickHouse's ReplacingMergeTree on ``trace_id`` stores them once.

>>> data = {"input": "x" * 10, "output": [{"role": "assistant", "content": "y" * 10}]}
>>> truncate_text(data, Limits(max_text_chars=4))
('input', 'output')
>>> data["input"], data["output"][0]["content"]
('xxxx', 'yyyy')
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

#: Free text: cut to ``max_text_chars``.
TEXT_FIELDS = ("input", "output", "error")
#: Identifiers (segment fields among them): cut to ``max_label_chars``.
LABEL_FIELDS = (
    "app", "route", "model", "model_version", "prompt_version", "tenant", "user_id",
    "session_id",
)


@dataclass(frozen=True, slots=True)
class Limits:
    """What the parser accepts. Defaults suit a chat app; every one maps to a setting."""

    #: Larger messages are refused whole (``too_large``). Kafka's own default is 1 MB.
    max_message_bytes: int = 1_000_000
    #: Per text field (``input``, ``output``, ``error``, each ``metadata`` value); longer
    #: text is cut. 32,000 characters is ~8k tokens, past what a judge would read.
    max_text_chars: int = 32_000
    #: Per identifier field (``app``, ``model``, ...): they become ClickHouse
    #: LowCardinality columns and Kafka keys, so a runaway value is cut short.
    max_label_chars: int = 256
    #: A timestamp further ahead than this is a producer clock or unit bug
    #: (``None``: no check).
    max_future_skew: timedelta | None = timedelta(days=1)
    #: An older timestamp would land in a dropped ClickHouse partition or skew the
    #: detectors' windows (``None``: no check).
    max_age: timedelta | None = timedelta(days=30)


def truncate_text(data: dict[str, Any], limits: Limits,
                  longest: int | None = None) -> tuple[str, ...]:
    """Cut over-long text in a contract dict in place; return the names of cut fields.

    Only values of the expected types are touched; anything else is left for
    validation to refuse. ``longest``, when known, bounds every string's length (a
    string decoded from a JSON message is never longer than the message's bytes): the
    checks it rules out are skipped, as most messages are far below the limits.
    """
    if longest is not None and longest <= min(limits.max_label_chars, limits.max_text_chars):
        return ()
    cut: list[str] = []
    n = limits.max_text_chars
    texts = longest is None or longest > n
    if texts:
        for name in TEXT_FIELDS:
            value = data.get(name)
            if isinstance(value, str):
                if len(value) > n:
                    data[name] = value[:n]
                    cut.append(name)
            elif isinstance(value, list) and _cut_messages(value, n):
                cut.append(name)
    for name in LABEL_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and len(value) > limits.max_label_chars:
            data[name] = value[: limits.max_label_chars]
            cut.append(name)
    if texts:
        _cut_metadata(data, n, cut)
    return tuple(cut)


def _cut_metadata(data: dict[str, Any], n: int, cut: list[str]) -> None:
    meta = data.get("metadata")
    if isinstance(meta, dict):
        long = [k for k, v in meta.items() if isinstance(v, str) and len(v) > n]
        for key in long:
            meta[key] = meta[key][:n]
        if long:
            cut.append("metadata")


def _cut_messages(messages: list[Any], budget: int) -> bool:
    # One budget for the whole field, so a chat of many long turns is bounded like a text.
    cut = False
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if not isinstance(content, str):
            continue
        if len(content) > budget:
            messages[i] = {**message, "content": content[:budget]}
            cut = True
        budget = max(budget - len(content), 0)
    return cut
