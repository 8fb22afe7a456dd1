"""The Redis-protocol store (DragonflyDB in production, redis-server embedded).

Hot logs, rate limits, live fan-out and revocations. One bounded, blocking connection pool per
process: under load callers wait for a connection instead of opening unbounded sockets.

A command retries once, at once, when its connection turns out to be closed: after a restart
or a failover every pooled connection is stale, and without the retry each of them failed one
command (a 503 at the gateway per connection). A timeout is not retried, because the command
may have run. Subscriptions get a pool of their own that never retries: redis-py's PubSub
reconnects through the same retry, and a subscription that came back silently left the
listeners unaware of the messages lost in the gap.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.retry
import redis.retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.infrastructure.config_manager import Settings, env_name
from aitrading.core.security.db_security_manager import TlsMaterial, redis_ssl_kwargs
from aitrading.core.security.tls import check_transport
from aitrading.core.stores.base import timed_health
from aitrading.core.stores.embedded import EmbeddedRedis


def redis_url(settings: Settings) -> str:
    if settings.redis.url is not None:
        return settings.redis.url.get_secret_value()
    return EmbeddedRedis(settings).url()


def _checked(settings: Settings) -> tuple[str, dict[str, object]]:
    """The URL and its TLS keyword arguments; plaintext to a remote host is refused."""
    url = redis_url(settings)
    parts = urlsplit(url)
    encrypted = parts.scheme == "rediss"
    check_transport(
        host=parts.hostname, encrypted=encrypted, setting=env_name("redis.url"), store="redis"
    )
    extra: dict[str, object] = {}
    if encrypted:
        extra = redis_ssl_kwargs(TlsMaterial.from_settings(settings.security))
    return url, extra


RETRIES_ON_A_CLOSED_CONNECTION = 1


def _command_retry() -> redis.asyncio.retry.Retry:
    return redis.asyncio.retry.Retry(
        NoBackoff(), RETRIES_ON_A_CLOSED_CONNECTION, supported_errors=(RedisConnectionError,)
    )


def sync_client(settings: Settings, timeout_s: float | None = None) -> redis.Redis:
    """A blocking client with the same checks and TLS as the pool: for the log router's hot
    tier (a logging thread) and the CLI's log commands. Built by hand, they skipped the
    stack's CA and could not reach a TLS-only store in Kubernetes."""
    url, extra = _checked(settings)
    timeout = timeout_s if timeout_s is not None else settings.redis.socket_timeout_s
    retry = redis.retry.Retry(
        NoBackoff(), RETRIES_ON_A_CLOSED_CONNECTION, supported_errors=(RedisConnectionError,)
    )
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=retry, **extra
    )


class RedisStore:
    name = "redis"

    def __init__(self, client: aioredis.Redis, timeout_s: float, listener: aioredis.Redis) -> None:
        self.client = client
        # For `pubsub()` only: its connections never reconnect behind a subscriber's back.
        self.listener = listener
        self._timeout_s = timeout_s

    @classmethod
    def create(cls, settings: Settings) -> RedisStore:
        conf = settings.redis
        url, extra = _checked(settings)
        common: dict[str, object] = {
            "max_connections": conf.max_connections,
            "socket_timeout": conf.socket_timeout_s,
            "socket_connect_timeout": conf.socket_timeout_s,
            "health_check_interval": 30,
            **extra,
        }
        pool = aioredis.BlockingConnectionPool.from_url(
            url, timeout=conf.socket_timeout_s, retry=_command_retry(), **common
        )
        subscriptions = aioredis.ConnectionPool.from_url(
            url, retry=redis.asyncio.retry.Retry(NoBackoff(), 0), **common
        )
        return cls(
            aioredis.Redis(connection_pool=pool),
            conf.socket_timeout_s,
            aioredis.Redis(connection_pool=subscriptions),
        )

    async def health(self) -> Health:
        return await timed_health("redis", self.client.ping, self._timeout_s)

    def pool_usage(self) -> tuple[int, int]:
        """(in use, idle) connections of the bounded pool."""
        pool = self.client.connection_pool
        # redis-py keeps these private; read defensively so an upgrade cannot break metrics.
        in_use = len(getattr(pool, "_in_use_connections", ()))
        idle = len(getattr(pool, "_available_connections", ()))
        return in_use, idle

    async def close(self) -> None:
        await self.client.aclose()
        await self.listener.aclose()
