"""PostgreSQL through one asyncpg pool per process.

Users, subscriptions, orders, the audit log and error groups live here. Outside loopback the
pool connects with TLS 1.3 and full certificate verification.
"""

from __future__ import annotations

import ssl
from urllib.parse import parse_qs, urlsplit

import asyncpg

from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.infrastructure.config_manager import Settings, env_name
from aitrading.core.security.db_security_manager import TlsMaterial, client_context
from aitrading.core.security.tls import check_transport, is_loopback
from aitrading.core.stores.base import timed_health
from aitrading.core.stores.embedded import EmbeddedPostgres

_ENCRYPTED_SSLMODES = {"require", "verify-ca", "verify-full"}


def postgres_dsn(settings: Settings) -> str:
    """The configured DSN, or the embedded server's when none is set (development)."""
    if settings.postgres.dsn is not None:
        return settings.postgres.dsn.get_secret_value()
    return EmbeddedPostgres(settings).dsn()


def connection_tls(dsn: str, settings: Settings, setting: str) -> ssl.SSLContext | None:
    """The TLS context a connection to `dsn` must use (TLS 1.3, verified against the
    configured CA), or None on loopback without sslmode. Plaintext to a remote host is
    refused, naming `setting`. Every PostgreSQL connection of the project goes through this:
    the pool, the migrations and `db runtime-login`."""
    parts = urlsplit(dsn)
    sslmode = parse_qs(parts.query).get("sslmode", [""])[0]
    encrypted = sslmode in _ENCRYPTED_SSLMODES
    check_transport(host=parts.hostname, encrypted=encrypted, setting=setting, store="postgres")
    if encrypted or not is_loopback(parts.hostname):
        return client_context(TlsMaterial.from_settings(settings.security))
    return None


class PostgresStore:
    name = "postgres"

    def __init__(self, pool: asyncpg.Pool, timeout_s: float) -> None:
        self.pool = pool
        self._timeout_s = timeout_s

    @classmethod
    async def create(cls, settings: Settings) -> PostgresStore:
        pg = settings.postgres
        dsn = postgres_dsn(settings)
        pool = await asyncpg.create_pool(
            dsn,
            min_size=pg.pool_min_size,
            max_size=pg.pool_max_size,
            timeout=pg.connect_timeout_s,
            command_timeout=pg.connect_timeout_s * 6,
            ssl=connection_tls(dsn, settings, env_name("postgres.dsn")),
        )
        return cls(pool, pg.connect_timeout_s)

    async def health(self) -> Health:
        async def probe() -> object:
            async with self.pool.acquire(timeout=self._timeout_s) as conn:
                return await conn.fetchval("SELECT 1")

        result = await timed_health("postgres", probe, self._timeout_s)
        return result

    def pool_usage(self) -> tuple[int, int]:
        """(in use, idle) connections: the gauges database-service exports."""
        size = self.pool.get_size()
        idle = self.pool.get_idle_size()
        return size - idle, idle

    async def close(self) -> None:
        await self.pool.close()
