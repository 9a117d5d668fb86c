"""Data contracts of driftline: the trace model, events, ClickHouse DDL.

This package imports nothing else of driftline's, so producers can depend on it alone.
"""

from schemas.events import DriftEvent
from schemas.trace import Trace, TraceError, parse_trace

__all__ = ["DriftEvent", "Trace", "TraceError", "parse_trace"]
