"""The trace contract: one JSON object per model call, as producers publish it.

Required: ``trace_id``, ``timestamp`` (RFC 3339 or epoch milliseconds), ``input`` and
``output`` (text or chat messages). Everything else is optional. See ``design.md``.

>>> t = parse_trace(b'{"trace_id": "t1", "timestamp": 1700000000000, "input": "hi",'
...                 b' "output": [{"role": "assistant", "content": "hello"}], "app": "bot"}')
>>> t.app, t.output_text, t.timestamp.isoformat()
('bot', 'hello', '2023-11-14T22:13:20+00:00')
>>> t.segment_key(("app", "model"))
'bot|-'
>>> parse_trace(b'{"trace_id": "t2"}')
Traceback (most recent call last):
...
schemas.trace.TraceError: missing_field: timestamp: Field required; input: Field required; ...
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

#: Segment values stand in for a missing field, so a segment key is never ambiguous.
MISSING = "-"
SEGMENT_SEPARATOR = "|"
#: The token counts' ClickHouse columns are UInt32.
MAX_TOKENS = 2**32 - 1


class TraceError(ValueError):
    """A message that is not a valid trace; ``reason`` is a short stable code for counting."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    role: str = "user"
    content: str = ""


def _to_utc(value: Any) -> Any:
    # The contract says epoch numbers are milliseconds; pydantic alone would guess.
    if isinstance(value, bool):
        raise ValueError("timestamp must be RFC 3339 text or epoch milliseconds")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value / 1000.0, tz=UTC)
        except (OverflowError, OSError, ValueError):
            # Outside what datetime can hold (or NaN): pydantic would let OverflowError and
            # OSError escape, and the parser must only ever raise TraceError.
            raise PydanticCustomError(
                "timestamp_out_of_range", "epoch milliseconds {value} out of range",
                {"value": value},
            ) from None
    return value


def _aware(value: datetime) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        # e.g. 9999-12-31T23:59:59-01:00 is past datetime.max once in UTC
        raise PydanticCustomError(
            "timestamp_out_of_range", "timestamp {value} out of range", {"value": str(value)},
        ) from None


Timestamp = Annotated[
    datetime,
    BeforeValidator(_to_utc),
    AfterValidator(_aware),
    # what producers may send, not pydantic's view of a datetime
    WithJsonSchema({"anyOf": [
        {"type": "string", "format": "date-time", "description": "RFC 3339"},
        {"type": "number", "description": "epoch milliseconds"},
    ]}),
]
Text = str | list[Message]


class Trace(BaseModel):
    """One model call, in the plain JSON form of the contract."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    trace_id: str = Field(min_length=1, max_length=256)
    timestamp: Timestamp
    input: Text
    output: Text
    app: str | None = None
    route: str | None = None
    model: str | None = None
    model_version: str | None = None
    prompt_version: str | None = None
    tenant: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    # Bounded by what their ClickHouse columns hold (UInt32, finite Float64): a value the
    # store refuses would be retried forever and stall its partition; here it is a dead
    # letter with its reason.
    latency_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    input_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    output_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    feedback: float | None = Field(
        default=None, ge=-1, le=1,
        description="user feedback in [-1, 1]: thumbs up 1, thumbs down -1",
        # the words are turned into numbers before validation
        json_schema_extra={"anyOf": [
            {"type": "number", "minimum": -1, "maximum": 1},
            {"enum": ["up", "down", "thumbs_up", "thumbs_down"]},
            {"type": "null"},
        ]},
    )
    error: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    # Set by the parser, not by producers, so they stay out of the JSON Schema. Slots, not
    # pydantic private attributes: those cost a dict per instance and a __getattr__ per
    # read, a tenth of the ingest path's time when measured.
    __slots__ = ("_input_text", "_output_text", "_source_format", "_truncated_fields")

    def _set_provenance(self, truncated_fields: tuple[str, ...], source_format: str) -> None:
        object.__setattr__(self, "_truncated_fields", truncated_fields)
        object.__setattr__(self, "_source_format", source_format)
        # Joined here, once: a first read of an unset slot goes through pydantic's
        # __getattr__, whose AttributeError cost more than the join itself.
        object.__setattr__(self, "_input_text", _text(self.input))
        object.__setattr__(self, "_output_text", _text(self.output))

    @property
    def truncated_fields(self) -> tuple[str, ...]:
        """Fields whose text was cut to ``Limits.max_text_chars`` (or label length)."""
        try:
            return self._truncated_fields
        except AttributeError:  # built outside the parser
            return ()

    @property
    def source_format(self) -> str:
        """The wire format the trace came in: plain, otel_genai, openinference, ..."""
        try:
            return self._source_format
        except AttributeError:
            return "plain"

    @property
    def input_text(self) -> str:
        """The input as one text (chat turns joined by newlines); computed once."""
        try:
            return self._input_text
        except AttributeError:
            object.__setattr__(self, "_input_text", _text(self.input))
            return self._input_text

    @property
    def output_text(self) -> str:
        try:
            return self._output_text
        except AttributeError:
            object.__setattr__(self, "_output_text", _text(self.output))
            return self._output_text

    def segment_values(self, fields: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(getattr(self, f, None) or MISSING for f in fields)

    def segment_key(self, fields: tuple[str, ...]) -> str:
        return SEGMENT_SEPARATOR.join(self.segment_values(fields))


def _text(value: Text) -> str:
    if isinstance(value, str):
        return value
    if len(value) == 1:
        return value[0].content
    return "\n".join([m.content for m in value])


_FEEDBACK_WORDS = {"up": 1.0, "thumbs_up": 1.0, "down": -1.0, "thumbs_down": -1.0}


def _normalise_feedback(data: dict[str, Any]) -> None:
    fb = data.get("feedback")
    if isinstance(fb, str) and fb.lower() in _FEEDBACK_WORDS:
        data["feedback"] = _FEEDBACK_WORDS[fb.lower()]


def build_trace(data: dict[str, Any]) -> Trace:
    """Validate one contract dict (plain JSON, or mapped from a span) into a :class:`Trace`.

    ``data`` may be modified (feedback words become numbers).
    """
    _normalise_feedback(data)
    try:
        return Trace.model_validate(data)
    except ValidationError as exc:
        raise _trace_error(exc) from None


def _trace_error(exc: ValidationError) -> TraceError:
    errors = exc.errors(include_url=False)
    types = {e["type"] for e in errors}
    if types == {"missing"}:
        reason = "missing_field"
    elif "timestamp_out_of_range" in types:
        reason = "timestamp_out_of_range"
    else:
        reason = "invalid_field"
    detail = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'trace'}: {e['msg']}" for e in errors[:5]
    )
    return TraceError(reason, detail)


def parse_trace(raw: bytes, *, max_bytes: int = 1_000_000) -> Trace:
    """Parse one plain-JSON message into a :class:`Trace` or raise :class:`TraceError`.

    Kept for compatibility: no format detection, no text or timestamp limits. New code
    calls :func:`schemas.parse.parse_message`.
    """
    if len(raw) > max_bytes:
        raise TraceError("too_large", f"{len(raw)} bytes > limit {max_bytes}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TraceError("invalid_json", str(exc)) from None
    if not isinstance(data, dict):
        raise TraceError("not_an_object", f"top-level JSON is {type(data).__name__}")
    return build_trace(data)
