"""Weaviate and ArangoDB have no embedded default.

Weaviate runs for real from the binary `make store-bin` builds; ArangoDB is a C++ server that
cannot be installed on this machine, so its test runs only when `AITRADING_ARANGO_URL` points
at one. Neither is ever faked.
"""

from __future__ import annotations

import os

import pytest

from aitrading.core.infrastructure.central_hub import HealthStatus
from aitrading.core.infrastructure.config_manager import load_settings

pytestmark = pytest.mark.integration


async def test_weaviate_store_round_trip(weaviate_env: dict[str, str]) -> None:
    """Against the real weaviate-server (skips with the reason when it is not built)."""
    from aitrading.core.stores.weaviate_store import WeaviateStore

    store = await WeaviateStore.create(load_settings(environ=weaviate_env).settings)
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


@pytest.mark.skipif(
    not os.environ.get("AITRADING_ARANGO_URL"),
    reason="no ArangoDB server: AITRADING_ARANGO_URL is not set",
)
async def test_chain_graph_in_arango() -> None:
    import asyncio
    import datetime as dt
    import uuid

    from aitrading.core.stores.arango_store import ArangoStore
    from aitrading.services.database_service.chains import _write_graph
    from aitrading.services.database_service.models import ChainDefinition
    from aitrading.services.database_service.schema import arango_schema

    store = ArangoStore.create(load_settings().settings)
    try:
        await asyncio.to_thread(arango_schema.migrate, store.db)
        now = dt.datetime.now(dt.UTC)
        chain = ChainDefinition(
            id=f"test-{uuid.uuid4().hex[:8]}",
            name="t",
            entry_service="api-gateway",
            steps=[
                {"service": "data-bridge", "operation": "ws"},
                {"service": "database-service", "operation": "batch"},
            ],
            version=1,
            created_at=now,
            updated_at=now,
        )
        await asyncio.to_thread(_write_graph, store.db, chain)
        edges = list(
            store.db.aql.execute(
                "FOR c IN calls FILTER c.chain_id == @id SORT c.position RETURN [c._from, c._to]",
                bind_vars={"id": chain.id},
            )
        )
        assert edges == [
            ["services/api-gateway", "services/data-bridge"],
            ["services/data-bridge", "services/database-service"],
        ]
    finally:
        await store.close()
