"""`aitrading serve <service>`: run one service with uvicorn (the container's command)."""

from __future__ import annotations

import importlib
import os
from enum import StrEnum
from pathlib import Path

import typer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aitrading.cli.common import ConfigOption, err_console, load_or_exit
from aitrading.cli.failures import EXIT_FAILED, explain
from aitrading.core.infrastructure.config_manager import DEBUG_ENV, Settings, env_name
from aitrading.core.infrastructure.environment import rules_for
from aitrading.core.security.tls import is_loopback
from aitrading.core.stores.embedded import port_is_free


class Service(StrEnum):
    DATABASE_SERVICE = "database-service"
    DATA_BRIDGE = "data-bridge"
    API_GATEWAY = "api-gateway"
    TRADING_ENGINE = "trading-engine"


# service -> (module with create_app, settings field of its port)
_SERVICES: dict[Service, tuple[str, str]] = {
    Service.DATABASE_SERVICE: (
        "aitrading.services.database_service.app",
        "database_service_port",
    ),
    Service.DATA_BRIDGE: ("aitrading.services.data_bridge.app", "data_bridge_port"),
    Service.API_GATEWAY: ("aitrading.services.api_gateway.app", "api_gateway_port"),
    Service.TRADING_ENGINE: ("aitrading.services.trading_engine.app", "trading_engine_port"),
}


class OneLineStartupFailure:
    """ASGI wrapper: a failed lifespan startup is reported as one line naming what is missing
    (`cli/failures.explain`) instead of the traceback text Starlette hands to uvicorn's log.
    AITRADING_DEBUG=1 keeps the traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan" or os.environ.get(DEBUG_ENV):
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold_failure(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                held.append(message)
                return
            await send(message)

        try:
            await self.app(scope, receive, hold_failure)
        except Exception as exc:
            if not held:
                raise
            await send({"type": "lifespan.startup.failed", "message": explain(exc)})
            return
        for message in held:
            await send(message)


def port_of(settings: Settings, service: Service) -> int:
    return int(getattr(settings.services, _SERVICES[service][1]))


def serve(
    service: Service = typer.Argument(..., help="which service to run"),  # noqa: B008
    config: Path | None = ConfigOption,
) -> None:
    """Run a service on its port (settings: services.<name>_port, services.bind_host)."""
    import uvicorn

    settings = load_or_exit(config).settings
    module_name, port_field = _SERVICES[service]
    port = port_of(settings, service)
    host = settings.services.bind_host
    tls = settings.security.tls_cert_file is not None and settings.security.tls_key_file is not None
    if (
        not rules_for(settings.environment).plaintext_beyond_loopback
        and not tls
        and not is_loopback(host)
    ):
        err_console.print(
            f"{service}: production serves TLS 1.3 only outside loopback; set "
            f"{env_name('security.tls_cert_file')} and {env_name('security.tls_key_file')} "
            "(the operator mounts them), or bind to 127.0.0.1"
        )
        raise typer.Exit(2)
    if not port_is_free(port, host):
        err_console.print(
            f"{service}: port {port} on {host} is already in use; "
            f"set {env_name('services.' + port_field)} to a free port"
        )
        raise typer.Exit(1)
    from aitrading.core.logging.service_logging import (
        start_service_logging,
        stop_service_logging,
    )
    from aitrading.services.common.access_log import uvicorn_log_config
    from aitrading.services.common.listener_tls import enforce_tls13, uvicorn_tls_kwargs

    app = OneLineStartupFailure(importlib.import_module(module_name).create_app(settings))
    router = start_service_logging(settings, service.value)
    try:
        server_config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=settings.log_level.lower(),
            proxy_headers=True,
            server_header=False,
            timeout_graceful_shutdown=20,
            timeout_keep_alive=5,  # idle keep-alive connections are closed after 5 s
            h11_max_incomplete_event_size=16 * 1024,  # request line + headers: at most 16 KiB
            limit_concurrency=2000,  # beyond this, 503 instead of unbounded queueing
            # a frame over the bridge's limit is refused by the protocol with `too_large`;
            # far beyond it, the WebSocket layer closes with 1009 before buffering it whole
            ws_max_size=2 * settings.data_bridge.max_frame_bytes,
            log_config=uvicorn_log_config(),  # access lines without query strings (tokens)
            **uvicorn_tls_kwargs(settings),  # HTTPS/WSS when a certificate is configured
        )
        enforce_tls13(server_config)  # TLS 1.3 and nothing older
        server = uvicorn.Server(server_config)
        try:
            server.run()
        except SystemExit as exit_:  # uvicorn's own exit status 3 on a failed startup
            if exit_.code not in (None, 0):
                raise typer.Exit(EXIT_FAILED) from None
            raise
    finally:
        stop_service_logging(router)
    if not server.started:  # startup failed (said in one line above): not a clean exit
        raise typer.Exit(EXIT_FAILED)
