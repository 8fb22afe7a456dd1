"""Weaviate and ArangoDB have no embedded server here: these run when a server URL is set.

Weaviate's server is built by `make store-bin` for the database-service issue; ArangoDB is a
C++ server that cannot be installed on this machine. Neither is ever faked.
"""

from __future__ import annotations

import os

import pytest

from aitrading.core.infrastructure.central_hub import HealthStatus
from aitrading.core.infrastructure.config_manager import load_settings

pytestmark = pytest.mark.integration


@pytest.mark.skipif(
    not os.environ.get("AITRADING_WEAVIATE_URL"),
    reason="no Weaviate server: AITRADING_WEAVIATE_URL is not set",
)
async def test_weaviate_store_round_trip() -> None:
    from aitrading.core.stores.weaviate_store import WeaviateStore

    store = await WeaviateStore.create(load_settings().settings)
    try:
        assert (await store.health()).status is HealthStatus.HEALTHY
    finally:
        await store.close()


@pytest.mark.skipif(
    not os.environ.get("AITRADING_ARANGO_URL"),
    reason="no ArangoDB server: AITRADING_ARANGO_URL is not set",
)
async def test_arango_store_round_trip() -> None:
    from aitrading.core.stores.arango_store import ArangoStore

    store = ArangoStore.create(load_settings().settings)
    try:
        assert (await store.health()).status is HealthStatus.HEALTHY
    finally:
        await store.close()
