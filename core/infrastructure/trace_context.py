"""The current request's trace ids, carried in a context variable for log records and
error bodies.

The spans themselves, and the W3C `traceparent` between services, are OpenTelemetry's
(`telemetry.py`); the request middleware sets `current_trace` from its server span.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    sampled: bool = True

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"


current_trace: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "aitrading_trace", default=None
)
current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "aitrading_request_id", default=""
)
