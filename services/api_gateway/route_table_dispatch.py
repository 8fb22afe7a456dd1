"""The route table's requests go straight to the proxy, ahead of FastAPI's router.

A proxied request reached `routers/proxy.py` through FastAPI's exception middleware, its
exit-stack middleware, a linear match against every route of the app (the catch-all is
the last), the route's own exception wrapper and the dependency solver: in the profile of
bench/gateway_overhead.py a tenth of the gateway's CPU per request, for a route whose only
dependency is the gateway's state. This ASGI middleware, the innermost, sends a request whose
path is in the route table and whose method the catch-all route accepts to the same
`forward` the route calls, and answers its `ApiError`s with the same body the app's handler
gives. Everything else (a path outside the table, a method the route does not take, the
token, chain and stream routes) goes on to FastAPI as before, so answers do not change;
only the path through the framework does. The request is tagged with the catch-all route of
its method, so its span and latency histogram carry the same route template.
"""

from __future__ import annotations

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from aitrading.services.api_gateway.deps import GatewayState
from aitrading.services.api_gateway.routers.proxy import forward
from aitrading.services.api_gateway.routing import routed
from aitrading.services.common.http import ApiError, error_response


class RouteTableDispatch:
    def __init__(self, app: ASGIApp, gateway: GatewayState, catch_all: dict[str, APIRoute]) -> None:
        self.app = app
        self._gateway = gateway
        self._catch_all = catch_all  # by method

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in self._catch_all
            or routed(scope, self._gateway.routes) is None
        ):
            await self.app(scope, receive, send)
            return
        scope["route"] = self._catch_all[scope["method"]]
        try:
            response = await forward(Request(scope, receive), self._gateway)
        except ApiError as refusal:
            response = error_response(refusal)
        await response(scope, receive, send)
