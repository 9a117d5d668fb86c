"""One span, normalised from whichever JSON shape it came in.

Shapes accepted for a single span (a Kafka message holding one span):

* OTLP JSON (``traceId``, ``spanId``, ``startTimeUnixNano``, ``attributes`` as a list of
  ``{"key", "value": {"stringValue": ...}}``, ``status.code``), optionally with a
  ``resource`` beside it;
* the OpenTelemetry Python SDK's ``ReadableSpan.to_json()`` (``context.trace_id`` as
  ``0x…`` hex, ISO ``start_time``, ``attributes`` as a flat object, ``status.status_code``).

>>> s = from_json({"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
...                "name": "chat", "startTimeUnixNano": "1700000000000000000",
...                "endTimeUnixNano": "1700000000250000000",
...                "attributes": [{"key": "gen_ai.request.model",
...                                "value": {"stringValue": "gpt-4o"}}]})
>>> s.attributes, s.latency_ms
({'gen_ai.request.model': 'gpt-4o'}, 250.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Keys whose presence (beside ``attributes``) says "this object is a span".
SPAN_KEYS = ("traceId", "spanId", "context", "span_id", "startTimeUnixNano", "start_time")
_ERROR_CODES = (2, "2", "STATUS_CODE_ERROR", "ERROR")


@dataclass(slots=True)
class Span:
    trace_id: str
    span_id: str
    name: str
    start_ns: int | None
    end_ns: int | None
    error: str | None
    attributes: dict[str, Any]
    resource: dict[str, Any] = field(default_factory=dict)
    #: (event name, event attributes), for the older GenAI prompt/completion events
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def latency_ms(self) -> float | None:
        if self.start_ns and self.end_ns and self.end_ns >= self.start_ns:
            return (self.end_ns - self.start_ns) / 1e6
        return None

    def base_contract(self) -> dict[str, Any]:
        """The contract fields every span convention shares: ids, time, app, error."""
        data: dict[str, Any] = {}
        if self.trace_id or self.span_id:
            # one trace per span: a model call is a span, many share an OTel trace id
            data["trace_id"] = f"{self.trace_id}:{self.span_id}"
        if self.start_ns:
            data["timestamp"] = self.start_ns / 1e6
        latency = self.latency_ms
        if latency is not None:
            data["latency_ms"] = latency
        app = self.resource.get("service.name")
        if isinstance(app, str) and app:
            data["app"] = app
        if self.error is not None:
            data["error"] = self.error
        return data


def is_span(obj: dict[str, Any]) -> bool:
    return "attributes" in obj and any(k in obj for k in SPAN_KEYS)


def any_value(value: Any) -> Any:
    """An OTLP JSON ``AnyValue`` as a Python value (``None`` if empty or unknown)."""
    if type(value) is not dict:
        return value
    # hot path: most attributes are strings, one dict lookup instead of a loop
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return _to_int(value["intValue"])  # int64 travels as a JSON string in OTLP JSON
    for kind in ("boolValue", "doubleValue", "bytesValue"):
        if kind in value:
            return value[kind]
    if "arrayValue" in value:
        inner = value["arrayValue"]
        values = inner.get("values") if type(inner) is dict else None
        return [any_value(v) for v in values] if type(values) is list else []
    if "kvlistValue" in value:
        inner = value["kvlistValue"]
        return key_values(inner.get("values") if type(inner) is dict else None)
    return None


def key_values(items: Any) -> dict[str, Any]:
    """OTLP JSON ``[{"key": k, "value": AnyValue}]`` (or an already flat object) as a dict."""
    if type(items) is dict:
        return items
    out: dict[str, Any] = {}
    if type(items) is list:
        for item in items:
            if type(item) is dict:
                key = item.get("key")
                if type(key) is str:
                    out[key] = any_value(item.get("value"))
    return out


def from_json(obj: dict[str, Any], resource: dict[str, Any] | None = None) -> Span:
    """Normalise one span object; tolerant of missing or mistyped parts (validation later)."""
    context = obj.get("context")
    context = context if isinstance(context, dict) else {}
    trace_id = _hex(obj.get("traceId", obj.get("trace_id", context.get("trace_id"))))
    span_id = _hex(obj.get("spanId", obj.get("span_id", context.get("span_id"))))
    if resource is None:
        res = obj.get("resource")
        resource = key_values(res.get("attributes")) if isinstance(res, dict) else {}
    events: list[tuple[str, dict[str, Any]]] = []
    raw_events = obj.get("events")
    if isinstance(raw_events, list):
        for ev in raw_events:
            if isinstance(ev, dict):
                events.append((str(ev.get("name", "")), key_values(ev.get("attributes"))))
    name = obj.get("name")
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        name=name if isinstance(name, str) else "",
        start_ns=_nanos(obj.get("startTimeUnixNano", obj.get("start_time"))),
        end_ns=_nanos(obj.get("endTimeUnixNano", obj.get("end_time"))),
        error=_status_error(obj.get("status")),
        attributes=key_values(obj.get("attributes")),
        resource=resource,
        events=events,
    )


def _hex(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return value[2:] if value.startswith("0x") else value


def _to_int(value: Any) -> int | None:
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and len(value) < 40:
        digits = value.strip()
        # isascii: str.isdigit() is true for "²", which int() refuses
        if digits.isascii() and digits.lstrip("-").isdigit():
            return int(digits)
    if isinstance(value, float) and value == value and abs(value) < 1e30:
        return int(value)
    return None


def _nanos(value: Any) -> int | None:
    if isinstance(value, str) and not value.isdigit():
        try:  # the SDK's ISO form, e.g. 2024-05-01T12:00:00.123456Z
            return int(datetime.fromisoformat(value).timestamp() * 1e9)
        except (ValueError, OverflowError, OSError):
            return None
    n = _to_int(value)
    return n if n is not None and n > 0 else None


def _status_error(status: Any) -> str | None:
    if not isinstance(status, dict):
        return None
    code = status.get("code", status.get("status_code"))
    if code not in _ERROR_CODES:
        return None
    message = status.get("message", status.get("description"))
    return message if isinstance(message, str) and message else "error"
