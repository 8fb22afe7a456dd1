"""FastAPI plumbing shared by every service.

- Errors are always `{"error": {"code", "message", "request_id", "details"?}}`; validation
  errors list every bad field (with the item's index for batches), never a Python repr.
- Each request gets a request id (`X-Request-ID`, or a new one) and a W3C trace context.
- `/health/live`, `/health/ready` (the hub's aggregate over real dependencies) and
  `/metrics` (Prometheus, names `aitrading_<service>_<what>_<unit>`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from aitrading.core.infrastructure.central_hub import HealthStatus, HubHealth
from aitrading.core.infrastructure.error_handler import ErrorDNA
from aitrading.services.common.request_context import RequestContext
from aitrading.services.common.tracing import current_request_id

_log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status, a stable machine code and a human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers  # e.g. Retry-After on 429


def error_response(error: ApiError) -> JSONResponse:
    """The JSON answer for `error`: what the exception handler sends, and what middleware
    outside the app's exception handling sends for the same refusal."""
    return JSONResponse(
        error_body(error.code, error.message, error.details),
        status_code=error.status,
        headers=error.headers,
    )


def error_body(
    code: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code,
        "message": message,
        "request_id": current_request_id.get(),
    }
    if details:
        body["details"] = details
    return {"error": body}


# The Prometheus text format every scraper reads (our metric names are plain ASCII).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"


class ErrorDetail(BaseModel):
    location: str | None = None
    field: str | None = None
    index: int | None = None
    reason: str | None = None


class ErrorInfo(BaseModel):
    code: str
    message: str
    request_id: str | None = None
    details: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    """Every error answer: `{"error": {"code", "message", "request_id", "details"?}}`."""

    error: ErrorInfo


_ERROR_MEANINGS = {
    400: "the body is not JSON (or not UTF-8)",
    401: "not authenticated (or, at database-service, a write without a service token)",
    403: "authenticated but not allowed",
    404: "no such resource",
    409: "conflicts with what exists",
    413: "body too large",
    422: "invalid input; `details` lists every problem",
    429: "rate limited; retry after `Retry-After` seconds",
    503: "a dependency this operation needs is down (the message names it)",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, all with the common error body."""
    return {
        code: {"model": ErrorBody, "description": _ERROR_MEANINGS.get(code, "error")}
        for code in codes
    }


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method the OpenAPI document lists for this path (several routes can share a
    path, and the router only knows the first one it tried)."""
    paths = app.openapi().get("paths", {})
    if request.url.path in paths:  # an exact path is more specific than any template
        exact = paths[request.url.path]
        return sorted(m.upper() for m in exact if m.lower() in _HTTP_METHODS)
    found: set[str] = set()
    for template, operations in paths.items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            found.update(m.upper() for m in operations if m.lower() in _HTTP_METHODS)
    return sorted(found)


_HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def validation_details(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic errors as {location, index?, field, reason}; the body's list index surfaces."""
    details = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        item: dict[str, Any] = {"location": ".".join(loc), "reason": err.get("msg", "invalid")}
        numbers = [p for p in err.get("loc", ()) if isinstance(p, int)]
        if numbers:
            item["index"] = numbers[0]
        if loc:
            item["field"] = loc[-1]
        details.append(item)
    return details


HealthProvider = Callable[[], HubHealth]


# Each request is already one SERVER span, with our request id, route and status
# (`RequestContext`). FastAPI's own instrumentation would add a second one as soon as any
# library set a global tracer or meter provider, and until then it looks those providers up
# on every request: 1.5 % of the gateway's CPU under load.
LEAVE_HTTP_TELEMETRY_TO_US: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def install_common(
    app: FastAPI,
    service: str,
    health: HealthProvider,
    registry: CollectorRegistry,
    tracer: Tracer | None = None,
) -> None:
    """Request ids, tracing (a span per request: the service's `Tracing`, or spans that go
    nowhere when none is given), error handlers, health and metrics routes."""
    dna = ErrorDNA(service)
    metric_prefix = f"aitrading_{service.replace('-', '_')}"
    latency = Histogram(
        f"{metric_prefix}_http_request_duration_seconds",
        "HTTP request latency by route and status",
        ["method", "route", "status"],
        registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    )

    def crashed(exc: Exception) -> JSONResponse:
        # ErrorDNA groups the failure; the fingerprint ties the client's answer to the log line
        occurrence = dna.analyze(exc)
        _log.error(
            "unhandled %s [%s]: %s",
            type(exc).__name__,
            occurrence.fingerprint,
            occurrence.message,
            exc_info=exc,
            extra={"fingerprint": occurrence.fingerprint, "category": occurrence.category.value},
        )
        message = f"internal error {occurrence.fingerprint}; see the service log"
        return JSONResponse(error_body("internal", message), 500)

    # added last, so outermost of the app's own middleware: errors the others return carry
    # the request id and trace context too
    app.add_middleware(
        RequestContext,
        latency=latency,
        crashed=crashed,
        tracer=tracer or TracerProvider().get_tracer(f"aitrading.{service}"),
    )

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(list(exc.errors()))
        message = f"{len(details)} invalid field(s); nothing was stored"
        return JSONResponse(error_body("validation_failed", message, details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
            exc.status_code, "http_error"
        )
        headers = {
            k: v for k, v in (getattr(exc, "headers", None) or {}).items() if k.lower() != "allow"
        }
        if exc.status_code == 405:  # RFC 9110: every method the path has, not one route's
            headers["allow"] = ", ".join(allowed_methods(app, request))
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers)

    @app.get("/health/live", tags=["health"], summary="The process is up")
    async def live() -> dict[str, str]:
        return {"status": "alive", "service": service}

    @app.get(
        "/health/ready",
        tags=["health"],
        summary="Every dependency, with reasons",
        responses={503: {"description": "a critical dependency is down (the body says which)"}},
    )
    async def ready() -> JSONResponse:
        current = health()
        body = {
            "status": current.status.value,
            "service": service,
            "reason": current.reason,
            "components": {
                name: {
                    "status": h.status.value,
                    "reason": h.reason,
                    "latency_ms": round(h.latency_s * 1000, 2),
                }
                for name, h in current.components.items()
            },
        }
        code = 503 if current.status is HealthStatus.UNHEALTHY else 200
        return JSONResponse(body, status_code=code)

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {METRICS_CONTENT_TYPE: {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=METRICS_CONTENT_TYPE)
