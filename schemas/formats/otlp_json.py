"""OTLP JSON ``ExportTraceServiceRequest``: what the Collector's Kafka exporter writes
with ``encoding: otlp_json``. Many spans per message, under ``resourceSpans`` →
``scopeSpans`` → ``spans``; ids are hex strings, times ``…UnixNano`` strings.

>>> req = {"resourceSpans": [{"resource": {"attributes": [
...     {"key": "service.name", "value": {"stringValue": "support-bot"}}]},
...     "scopeSpans": [{"spans": [{"traceId": "aa", "spanId": "01", "name": "GET /"}]}]}]}
>>> [(s.span_id, s.resource["service.name"]) for s in spans(req)]
[('01', 'support-bot')]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from schemas.formats.span import Span, from_json, key_values

NAME = "otlp_json"


def matches(obj: dict[str, Any]) -> bool:
    return "resourceSpans" in obj or "resource_spans" in obj


def spans(obj: dict[str, Any]) -> Iterator[Span]:
    """Every span of the request, with its resource's attributes."""
    for rs in _list(obj.get("resourceSpans", obj.get("resource_spans"))):
        resource = rs.get("resource")
        attrs = key_values(resource.get("attributes")) if isinstance(resource, dict) else {}
        # instrumentationLibrarySpans: the name before OTLP 0.15, still sent by old SDKs
        scopes = rs.get("scopeSpans", rs.get("scope_spans", rs.get("instrumentationLibrarySpans")))
        for ss in _list(scopes):
            for span in _list(ss.get("spans")):
                yield from_json(span, attrs)


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
