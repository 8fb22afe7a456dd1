"""W3C trace context for the services: see `aitrading.core.infrastructure.trace_context`."""

from aitrading.core.infrastructure.trace_context import (
    TraceContext,
    continue_or_start,
    current_request_id,
    current_trace,
)

__all__ = ["TraceContext", "continue_or_start", "current_request_id", "current_trace"]
