"""Weaviate through weaviate-client v4 (async): ErrorDNA similarity search.

There is no embedded default; unconfigured, `create` raises `StoreNotConfiguredError` naming
the setting. Outside loopback both REST and gRPC use TLS.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.infrastructure.config_manager import Settings, env_name
from aitrading.core.infrastructure.import_manager import ImportManager
from aitrading.core.security.db_security_manager import TlsMaterial, weaviate_connection_params
from aitrading.core.security.tls import check_transport
from aitrading.core.stores.base import StoreNotConfiguredError, timed_health


class WeaviateStore:
    name = "weaviate"

    def __init__(self, client: Any, timeout_s: float) -> None:
        self.client = client
        self._timeout_s = timeout_s

    @classmethod
    async def create(
        cls, settings: Settings, imports: ImportManager | None = None
    ) -> WeaviateStore:
        conf = settings.weaviate
        if conf.url is None:
            raise StoreNotConfiguredError("weaviate", env_name("weaviate.url"))
        weaviate = (imports or ImportManager()).require("weaviate")
        parts = urlsplit(conf.url)
        secure = parts.scheme == "https"
        check_transport(
            host=parts.hostname,
            encrypted=secure,
            setting=env_name("weaviate.url"),
            store="weaviate",
        )
        if secure:
            import os

            # weaviate-client reads a private CA from the environment; never override the user's.
            params = weaviate_connection_params(TlsMaterial.from_settings(settings.security))
            for name, value in params.items():
                os.environ.setdefault(name, value)
        auth = None
        if conf.api_key is not None:
            auth = weaviate.classes.init.Auth.api_key(conf.api_key.get_secret_value())
        client = weaviate.use_async_with_custom(
            http_host=parts.hostname,
            http_port=parts.port or (443 if secure else 80),
            http_secure=secure,
            grpc_host=parts.hostname,
            grpc_port=conf.grpc_port,
            grpc_secure=secure,
            auth_credentials=auth,
        )
        await client.connect()
        return cls(client, 10.0)

    async def health(self) -> Health:
        async def probe() -> object:
            if not await self.client.is_ready():
                raise ConnectionError("weaviate reports not ready")
            return True

        return await timed_health("weaviate", probe, self._timeout_s)

    async def close(self) -> None:
        await self.client.close()
