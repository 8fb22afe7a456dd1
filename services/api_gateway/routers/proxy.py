"""Everything else under /api/v1: routed to the upstream the route table names.

Checks in order: the route exists and allows the method → authentication (unless public) →
the per-user, per-tier limit → role (admin routes, audited) → plan feature → symbol
entitlement; then the request goes upstream with a `traceparent`, the user's id, and the
gateway's own service token, and the answer streams back as the upstream encoded it. The hop
is an OpenTelemetry CLIENT span, from which the chain registry learns its outcome. A small
answer is read whole and sent as one response; a large or chunked one is streamed.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from opentelemetry.trace import SpanKind, StatusCode
from starlette.background import BackgroundTask

from aitrading.core.infrastructure.telemetry import inject
from aitrading.core.security.jwt_manager import TokenRejectedError
from aitrading.core.security.rate_limiter import MARKET_DATA, Decision, PendingHit, Scope
from aitrading.core.security.subscription_validator import Effective
from aitrading.core.security.users import User
from aitrading.services.api_gateway.admission import RevocationUnavailableError
from aitrading.services.api_gateway.deps import (
    INVALID_TOKEN,
    REVOCATION_UNAVAILABLE,
    Gateway,
    GatewayState,
    GatewayStores,
    Principal,
    authenticate,
    bearer_token,
    limit,
    refuse_when_limited,
    stores_of,
)
from aitrading.services.api_gateway.door_limits import claim_deferred, door_refusal
from aitrading.services.api_gateway.routing import Access, Route, routed
from aitrading.services.api_gateway.tracing import CHAIN_ROUTE, CHAIN_UPSTREAM
from aitrading.services.api_gateway.upstreams import UpstreamUnavailableError
from aitrading.services.common.http import ApiError, error_responses

router = APIRouter(prefix="/api/v1", tags=["proxy"])
_HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "authorization",
    "x-api-key",
    "te",
    "trailer",
}
_ANONYMOUS = Principal("anonymous", {})
# An answer up to this size is read whole and sent as one response; a larger or chunked one is
# streamed. Streaming costs a task group and a watcher for the client's disconnect per
# response, a large share of the gateway's CPU for the small JSON answers most routes give.
BUFFERED_BODY_BYTES = 256 * 1024


PROXIED_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


async def proxy(rest: str, request: Request, gateway: Gateway) -> Response:
    """The route table's paths are served by `RouteTableDispatch` before FastAPI's router;
    this route documents them in the OpenAPI schema and answers a path the table lacks."""
    return await forward(request, gateway)


for _method in PROXIED_METHODS:  # a route per method: each operation has an id of its own
    router.add_api_route(
        "/{rest:path}",
        proxy,
        methods=[_method],
        operation_id=f"proxy_{_method.lower()}",
        summary="Routed to the upstream named by the route table",
        responses={
            **error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503),
            "2XX": {"description": "the upstream's answer, passed through"},
        },
    )


def catch_all_routes() -> dict[str, APIRoute]:
    """The routes above by method, as FastAPI registered them: the path template a request
    is labelled with, whichever way it was served."""
    return {
        method: route
        for route in router.routes
        if isinstance(route, APIRoute) and route.endpoint is proxy
        for method in route.methods or ()
    }


async def forward(request: Request, gateway: GatewayState) -> Response:
    """The checks, then the upstream's answer (an `ApiError` for a refusal)."""
    # the per-IP limit the door left to admission (a request it expects to admit below)
    door = claim_deferred(request.scope.setdefault("state", {}))
    route = routed(request.scope, gateway.routes)
    if route is None or request.method not in route.methods or route.access is Access.PUBLIC:
        await _charge_door(request, door)  # not admitted below: decided on its own, first
    if route is None:
        raise ApiError(404, "not_found", f"no route for {request.url.path}")
    if request.method not in route.methods:
        raise ApiError(405, "method_not_allowed", f"{request.method} is not allowed here")
    caller = _ANONYMOUS
    if route.access is not Access.PUBLIC:
        caller = await _authorize(request, route, door)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
    headers["x-aitrading-user"] = caller.subject
    with gateway.tracer.start_as_current_span(
        f"{request.method} {route.upstream}",
        kind=SpanKind.CLIENT,
        attributes={
            "http.request.method": request.method,
            CHAIN_ROUTE: route.prefix,
            CHAIN_UPSTREAM: route.upstream,
        },
        record_exception=False,
    ) as span:
        inject(headers)  # the upstream's server span is a child of this one
        try:
            upstream = await gateway.upstreams.send(
                route.upstream,
                request.method,
                route.upstream_path(request.url.path),
                request.url.query.encode(),
                headers,
                await request.body(),
            )
        except UpstreamUnavailableError as exc:
            span.set_attribute("http.response.status_code", 503)
            span.set_status(StatusCode.ERROR, "upstream unavailable")
            raise ApiError(503, "upstream_unavailable", str(exc)) from None
        span.set_attribute("http.response.status_code", upstream.status_code)
        if upstream.status_code >= 500:
            span.set_status(StatusCode.ERROR)
    # the body goes through as the upstream encoded it, so its content-encoding does too
    out_headers = {k: v for k, v in upstream.headers if k.lower() not in _HOP_HEADERS}
    size = upstream.content_length
    if size is not None and size <= BUFFERED_BODY_BYTES:
        try:
            body = await upstream.read()
        except UpstreamUnavailableError as exc:
            raise ApiError(503, "upstream_unavailable", str(exc)) from None
        return Response(body, status_code=upstream.status_code, headers=out_headers)
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=out_headers,
        background=BackgroundTask(upstream.aclose),
    )


async def _authorize(request: Request, route: Route, door: PendingHit | None) -> Principal:
    """Authentication, the per-user limit, role, feature and symbol checks of a route."""
    stores = await stores_of(request)
    token = bearer_token(request)
    if token is not None:
        caller, entitlement = await _admit_bearer(request, stores, token, door)
    else:  # an API key, or nothing (401)
        await _charge_door(request, door)
        caller = await authenticate(request, stores)
        entitlement = await stores.subscriptions.entitlements(caller.subject)
        await limit(stores, MARKET_DATA, Scope.API_KEY, caller.subject, entitlement.tier.value)
    if route.access is Access.ADMIN:
        record = caller.user or await stores.users.get(caller.subject) or User("", "", "")
        if record.role != "admin":
            raise ApiError(403, "forbidden", "administrators only")
        await stores.audit.append(
            caller.subject, f"admin.{request.method.lower()}", request.url.path, "allowed"
        )
    if route.feature and route.feature not in entitlement.entitlements.features:
        raise ApiError(403, "forbidden", f"your plan does not include {route.feature}")
    if route.symbol_param:
        symbol = request.query_params.get(route.symbol_param, "")
        if not entitlement.entitlements.allows_symbol(symbol):
            raise ApiError(403, "forbidden", f"your plan does not include {symbol!r}")
    return caller


async def _admit_bearer(
    request: Request, stores: GatewayStores, token: str, door: PendingHit | None
) -> tuple[Principal, Effective]:
    """A bearer token decoded here, then the door's per-IP limit (when it deferred it), the
    token's revocation state and its user's limit in one Redis call (`admission.py`)."""
    try:
        claims = stores.jwt.claims(token)
    except TokenRejectedError:
        await _charge_door(request, door)  # a limited address hears 429 first, as at the door
        raise INVALID_TOKEN from None
    subject = str(claims["sub"])
    entitlement = await stores.subscriptions.entitlements(subject)
    try:
        admitted = await stores.admission.admit(
            claims, MARKET_DATA, Scope.USER, entitlement.tier.value, door
        )
    except TokenRejectedError:
        raise INVALID_TOKEN from None
    except RevocationUnavailableError:
        raise ApiError(503, "unavailable", REVOCATION_UNAVAILABLE) from None
    if admitted.by_door:
        _refuse_at_door(admitted.decision)
    refuse_when_limited(admitted.decision)
    return Principal(subject, claims), entitlement


async def _charge_door(request: Request, door: PendingHit | None) -> None:
    """The deferred per-IP limit, decided on its own (429 when refused)."""
    if door is not None:
        limiter = (await stores_of(request)).limiter
        _refuse_at_door(await limiter.hit(door.policy, door.scope, door.identity))


def _refuse_at_door(decision: Decision) -> None:
    refused = door_refusal(decision)
    if refused is not None:
        raise refused
