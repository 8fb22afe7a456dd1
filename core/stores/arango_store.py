"""ArangoDB through python-arango: the service/request chain graph.

No embedded default (a C++ server we cannot ship); unconfigured, `create` raises
`StoreNotConfiguredError`. The HTTP pool is sized from settings, and HTTPS connections
refuse anything below TLS 1.3.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.infrastructure.config_manager import Settings, env_name
from aitrading.core.infrastructure.import_manager import ImportManager
from aitrading.core.security.db_security_manager import TlsMaterial, client_context
from aitrading.core.security.tls import check_transport
from aitrading.core.stores.base import StoreNotConfiguredError, timed_health


def _tls13_http_client(
    arango_http: Any, pool_size: int, timeout_s: float, material: TlsMaterial
) -> Any:
    """python-arango's default HTTP client with its pool sized and a TLS 1.3 context."""

    class Tls13Adapter(arango_http.DefaultHTTPAdapter):  # type: ignore[misc]
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["ssl_context"] = client_context(material)
            super().init_poolmanager(*args, **kwargs)

    class Tls13Client(arango_http.DefaultHTTPClient):  # type: ignore[misc]
        def create_session(self, host: str) -> Any:
            session = super().create_session(host)
            session.mount(
                "https://",
                Tls13Adapter(
                    connection_timeout=timeout_s,
                    pool_connections=pool_size,
                    pool_maxsize=pool_size,
                ),
            )
            return session

    return Tls13Client(
        request_timeout=timeout_s, pool_connections=pool_size, pool_maxsize=pool_size
    )


class ArangoStore:
    name = "arango"

    def __init__(self, client: Any, database: Any, timeout_s: float) -> None:
        self.client = client
        self.db = database
        self._timeout_s = timeout_s

    @classmethod
    def create(cls, settings: Settings, imports: ImportManager | None = None) -> ArangoStore:
        conf = settings.arango
        if conf.url is None:
            raise StoreNotConfiguredError("arango", env_name("arango.url"))
        imports = imports or ImportManager()
        arango = imports.require("arango")
        arango_http = imports.require("arango.http")
        parts = urlsplit(conf.url)
        check_transport(
            host=parts.hostname,
            encrypted=parts.scheme == "https",
            setting=env_name("arango.url"),
            store="arango",
        )
        timeout_s = 10.0
        client = arango.ArangoClient(
            hosts=conf.url,
            http_client=_tls13_http_client(
                arango_http, conf.pool_size, timeout_s, TlsMaterial.from_settings(settings.security)
            ),
        )
        password = conf.password.get_secret_value() if conf.password else ""
        database = client.db(conf.database, username=conf.username, password=password)
        return cls(client, database, timeout_s)

    async def health(self) -> Health:
        return await timed_health(
            "arango", lambda: asyncio.to_thread(self.db.version), self._timeout_s
        )

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)
