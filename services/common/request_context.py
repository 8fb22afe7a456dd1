"""Request id, trace context and the latency histogram, as a plain ASGI middleware.

It was a Starlette `BaseHTTPMiddleware` (`@app.middleware("http")`), which runs every request
through an anyio task group and memory streams: in the gateway's profile two of them were a
large share of the CPU per proxied request. A plain ASGI middleware sets the same context
variables around the inner app (so handlers, logs and outgoing calls see them), adds the
same response headers on `http.response.start`, and answers an unhandled exception with the
crash response while the request id and trace are still set.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Histogram
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aitrading.services.common.tracing import continue_or_start, current_request_id, current_trace

MAX_REQUEST_ID = 128


class RequestContext:
    def __init__(
        self, app: ASGIApp, latency: Histogram, crashed: Callable[[Exception], Response]
    ) -> None:
        self.app = app
        self._latency = latency
        self._crashed = crashed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = (headers.get("x-request-id") or secrets.token_hex(12))[:MAX_REQUEST_ID]
        trace = continue_or_start(headers.get("traceparent"))
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
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_context)
        except Exception as exc:
            if started_response:
                raise  # the status line is out: nothing better can be said to this client
            await self._crashed(exc)(scope, receive, send_with_context)
        finally:
            route: Any = scope.get("route")
            self._latency.labels(
                scope["method"], getattr(route, "path", "unmatched"), str(status)
            ).observe(time.perf_counter() - started)
            current_request_id.reset(rid_token)
            current_trace.reset(trace_token)
