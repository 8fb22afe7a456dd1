"""One line instead of a traceback: what a CLI command could not reach, and how to start it.

A user who runs `aitrading users create` before anything is up should read "PostgreSQL is
not reachable at 127.0.0.1:5432 … start the embedded stores with …", not two chained
tracebacks. `explain` walks the exception chain for the first cause it recognises (a refused
or failed connection, a missing Kubernetes configuration), names the store or service by its
configured port, and says how to start it. Anything else is still one line, redacted, with
`AITRADING_DEBUG=1` named as the way to see the traceback.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

from aitrading.core.infrastructure.config_manager import ConfigError, Settings, load_settings
from aitrading.core.security.redaction import redact

EXIT_FAILED = 1
CLI = ".venv/bin/aitrading"
_STORES_HINT = f"start the embedded stores with `{CLI} stores up` (or `make demo`)"
_ENDPOINT = re.compile(
    r"(?P<host>\d{1,3}(?:\.\d{1,3}){3}|localhost|\[[0-9a-f:]+\]|[a-z0-9][a-z0-9.-]*)"
    r"(?:'?, |:)(?P<port>\d{2,5})\b",
    re.IGNORECASE,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        for inner in getattr(current, "exceptions", ()):  # exception groups (anyio, asyncio)
            if isinstance(inner, BaseException):
                yield from _chain(inner)
        current = current.__cause__ or current.__context__


def _is_connection_failure(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | socket.gaierror | TimeoutError):
        return True
    module = type(exc).__module__
    name = type(exc).__name__
    if module.startswith("redis") and name in ("ConnectionError", "TimeoutError"):
        return True
    if module.startswith("httpx") and name in ("ConnectError", "ConnectTimeout"):
        return True
    return module.startswith("asyncpg") and name in ("CannotConnectNowError",)


def _targets(settings: Settings | None) -> dict[int, tuple[str, str]]:
    """Configured port → (what listens there, how to start it)."""
    if settings is None:
        return {}
    services = settings.services
    serve = f"start it with `{CLI} serve {{}}` (or `make demo`)"
    return {
        settings.postgres.port: ("PostgreSQL", _STORES_HINT),
        settings.redis.port: ("the Redis-protocol store (Dragonfly/redis)", _STORES_HINT),
        services.database_service_port: (
            "database-service",
            serve.format("database-service"),
        ),
        services.data_bridge_port: ("data-bridge", serve.format("data-bridge")),
        services.trading_engine_port: ("trading-engine", serve.format("trading-engine")),
        services.api_gateway_port: ("api-gateway", serve.format("api-gateway")),
    }


_CLIENTS = ("asyncpg", "redis", "clickhouse_connect", "httpx")


def _client_of(exc: BaseException) -> str | None:
    """Which client library was connecting, from the frames the failure passed through
    (uvloop's "connection refused" names no address)."""
    for cause in _chain(exc):
        tb = cause.__traceback__
        while tb is not None:
            module = str(tb.tb_frame.f_globals.get("__name__", ""))
            for client in _CLIENTS:
                if module == client or module.startswith(client + "."):
                    return client
            tb = tb.tb_next
    return None


def _store_of(client: str, settings: Settings | None) -> tuple[str, str]:
    """(the store's name, " at 127.0.0.1:PORT" when it is the embedded one we know)."""
    if client == "asyncpg":
        port = None if settings is None or settings.postgres.dsn else settings.postgres.port
        return "PostgreSQL", f" at 127.0.0.1:{port}" if port else ""
    if client == "redis":
        port = None if settings is None or settings.redis.url else settings.redis.port
        return "the Redis-protocol store (Dragonfly/redis)", f" at 127.0.0.1:{port}" if port else ""
    if client == "clickhouse_connect":
        return "ClickHouse", ""
    return "a service", ""


def _settings() -> Settings | None:
    try:
        return load_settings().settings
    except (ConfigError, OSError, ValueError):
        return None


def explain(exc: BaseException, settings: Settings | None = None) -> str:
    """The one line a user sees for `exc` (no secret, no traceback)."""
    settings = settings if settings is not None else _settings()
    for cause in _chain(exc):
        if type(cause).__name__ == "ConfigException" and "kubernetes" in type(cause).__module__:
            return (
                "no Kubernetes configuration: the operator runs in a cluster (its service "
                "account) or with KUBECONFIG pointing at one — see README, Kubernetes"
            )
        if not _is_connection_failure(cause):
            continue
        text = redact(str(cause)) or type(cause).__name__
        found = _ENDPOINT.search(text)
        if found is not None:
            port = int(found["port"])
            what, hint = _targets(settings).get(port, (f"{found['host']}:{port}", ""))
            where = f"{found['host'].strip('[]')}:{port}"
            line = f"{what} is not reachable at {where} ({type(cause).__name__})"
            return f"{line}; {hint}" if hint else line
        client = _client_of(exc)
        if client is not None:
            what, where = _store_of(client, settings)
            return f"{what} is not reachable{where} ({type(cause).__name__}); {_STORES_HINT}"
        return f"a connection failed ({type(cause).__name__}: {text[:200]}); {_STORES_HINT}"
    first = redact(str(exc)).splitlines()[0][:300] if str(exc) else ""
    return (
        f"failed: {type(exc).__name__}{': ' + first if first else ''} "
        "(AITRADING_DEBUG=1 shows the traceback)"
    )
