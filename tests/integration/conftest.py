"""Real embedded servers for the integration tests: started once per session, then removed."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aitrading.core.infrastructure.config_manager import Settings, load_settings
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.core.stores.embedded import EmbeddedPostgres, EmbeddedRedis
from aitrading.core.stores.postgres import PostgresStore
from aitrading.core.stores.redis_store import RedisStore


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_env(data_dir: Path) -> dict[str, str]:
    """Environment for a fresh, isolated set of embedded stores."""
    return {
        "AITRADING_DATA_DIR": str(data_dir),
        "AITRADING_POSTGRES_PORT": str(free_port()),
        "AITRADING_REDIS_PORT": str(free_port()),
    }


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    data_dir = tmp_path_factory.mktemp("stores")
    loaded = load_settings(environ=embedded_env(data_dir)).settings
    postgres = EmbeddedPostgres(loaded)
    redis_server = EmbeddedRedis(loaded)
    postgres.start()
    try:
        redis_server.start()
        yield loaded
    finally:
        redis_server.stop()
        postgres.stop()


@pytest.fixture(scope="session")
async def postgres(settings: Settings) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.create(settings)
    yield store
    await store.close()


@pytest.fixture(scope="session")
async def redis_store(settings: Settings) -> AsyncIterator[RedisStore]:
    store = RedisStore.create(settings)
    yield store
    await store.close()


@pytest.fixture(scope="session")
async def clickhouse(settings: Settings) -> AsyncIterator[ClickHouseStore]:
    """chdb allows one data path per process, so the whole session shares this one."""
    store = await ClickHouseStore.create(settings)
    yield store
    await store.close()
