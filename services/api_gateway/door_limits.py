"""The first two checks at the door, before any routing or authentication work: the body's
declared size, then the per-IP rate limit (health probes are exempt).

A plain ASGI middleware rather than a Starlette `BaseHTTPMiddleware`: that one runs each
request through an anyio task group and memory streams, and showed as a large share of the
gateway's CPU per proxied request in the profile of bench/gateway_overhead.py.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from aitrading.core.security.rate_limiter import Policy, RateLimiter
from aitrading.core.security.rate_limiter import Scope as LimitScope
from aitrading.services.common.http import error_body

MAX_BODY_BYTES = 1024 * 1024


class DoorLimits:
    def __init__(
        self, app: ASGIApp, limiter: Callable[[], RateLimiter | None], per_ip: Policy
    ) -> None:
        self.app = app
        self._limiter = limiter  # built in the lifespan; None until the stores are up
        self._per_ip = per_ip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            message = f"bodies are limited to {MAX_BODY_BYTES} bytes"
            await _error(413, "payload_too_large", message)(scope, receive, send)
            return
        limiter = self._limiter()
        if limiter is not None and not str(scope["path"]).startswith("/health"):
            client = scope.get("client")
            ip = client[0] if client else "unknown"
            decision = await limiter.hit(self._per_ip, LimitScope.IP, ip)
            if not decision.allowed:
                refused = _error(429, "rate_limited", "too many requests from this address")
                refused.headers["retry-after"] = decision.retry_after_header
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status)
