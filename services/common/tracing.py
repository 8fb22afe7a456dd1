"""W3C trace context for the services: see `aitrading.core.infrastructure.trace_context`."""

from aitrading.core.infrastructure.trace_context import (
    TraceContext,
    current_request_id,
    current_trace,
)

__all__ = ["TraceContext", "current_request_id", "current_trace"]
