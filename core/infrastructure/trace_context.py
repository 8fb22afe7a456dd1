"""W3C trace context: parse or create `traceparent`, carried in a context variable.

Every log line and every upstream call of a request carries its trace id; the gateway creates
one when a request arrives without it, and every other service continues the caller's.
"""

from __future__ import annotations

import contextvars
import re
import secrets
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    sampled: bool = True

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def child(self) -> TraceContext:
        """The context an outgoing call carries: same trace, new span."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.span_id, self.sampled)


def continue_or_start(header: str | None) -> TraceContext:
    """Continue the caller's trace when its header is valid; otherwise start a new one."""
    match = _TRACEPARENT.match(header.strip().lower()) if header else None
    if match and match.group(1) != "0" * 32 and match.group(2) != "0" * 16:
        return TraceContext(
            match.group(1), secrets.token_hex(8), match.group(2), match.group(3) == "01"
        )
    return TraceContext(secrets.token_hex(16), secrets.token_hex(8), None)


current_trace: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "aitrading_trace", default=None
)
current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "aitrading_request_id", default=""
)
