"""A fresh PostgreSQL database with the schema the released migrations create.

Library code never creates schema (the revisions in
`services/database_service/schema/postgres/versions/` do), so a test that needs an isolated
schema gets its own database, migrated exactly as a deployment is.
"""

from __future__ import annotations

import uuid

from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.stores.postgres import PostgresStore
from aitrading.services.database_service.schema.postgres import migrate


async def migrated_database(settings: Settings, server: PostgresStore) -> Settings:
    """Create a database on `server`'s instance, migrate it to head, and return settings
    that point at it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    await server.pool.execute(f"CREATE DATABASE {name}")
    fresh = settings.model_copy(
        update={"postgres": settings.postgres.model_copy(update={"database": name})}
    )
    await migrate(fresh)
    return fresh
