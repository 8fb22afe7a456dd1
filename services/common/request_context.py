"""Request id, trace context and the latency histogram, as a plain ASGI middleware.

It was a Starlette `BaseHTTPMiddleware` (`@app.middleware("http")`), which runs every request
through an anyio task group and memory streams: in the gateway's profile two of them were a
large share of the CPU per proxied request. A plain ASGI middleware sets the same context
variables around the inner app (so handlers, logs and outgoing calls see them), adds the
same response headers on `http.response.start`, and answers an unhandled exception with the
crash response while the request id and trace are still set.

Each request is an OpenTelemetry SERVER span, continuing the caller's W3C `traceparent`
(or starting a trace), named by its route template once routing has matched it, with the
response status; `current_trace` mirrors it for log records and error bodies.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import SpanKind, StatusCode, Tracer
from prometheus_client import Histogram
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aitrading.core.infrastructure.telemetry import extract, trace_of
from aitrading.services.common.tracing import current_request_id, current_trace

MAX_REQUEST_ID = 128


class RequestContext:
    def __init__(
        self,
        app: ASGIApp,
        latency: Histogram,
        crashed: Callable[[Exception], Response],
        tracer: Tracer,
    ) -> None:
        self.app = app
        self._latency = latency
        self._crashed = crashed
        self._tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = (headers.get("x-request-id") or secrets.token_hex(12))[:MAX_REQUEST_ID]
        parent = extract(headers)
        caller = otel_trace.get_current_span(parent).get_span_context()
        method = scope["method"]
        span = self._tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        )
        trace = trace_of(span, f"{caller.span_id:016x}" if caller.is_valid else None)
        status = 500
        started_response = False

        async def send_with_context(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = int(message["status"])
                out = MutableHeaders(scope=message)
                out["x-request-id"] = request_id
                out["traceparent"] = trace.traceparent
            await send(message)

        rid_token = current_request_id.set(request_id)
        trace_token = current_trace.set(trace)
        span_token = otel_context.attach(otel_trace.set_span_in_context(span, parent))
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_context)
        except Exception as exc:
            if started_response:
                raise  # the status line is out: nothing better can be said to this client
            await self._crashed(exc)(scope, receive, send_with_context)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self._latency.labels(method, template, str(status)).observe(
                time.perf_counter() - started
            )
            span.update_name(f"{method} {template}")
            span.set_attribute("http.route", template)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(StatusCode.ERROR)
            span.end()
            otel_context.detach(span_token)
            current_request_id.reset(rid_token)
            current_trace.reset(trace_token)
