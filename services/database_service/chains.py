"""Chain definitions (the seed's chain registry): rows in PostgreSQL, a graph in ArangoDB.

PostgreSQL is the record; when ArangoDB is configured each definition is also written as
`services` vertices and `calls` edges (one per consecutive pair of steps) so that call paths
can be traversed. Without ArangoDB the definitions still work; the graph is skipped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from typing import TYPE_CHECKING, Any

from aitrading.services.database_service.models import ChainDefinition, ChainDefinitionIn

if TYPE_CHECKING:
    import asyncpg

    from aitrading.core.stores.arango_store import ArangoStore


def chain_id(name: str) -> str:
    slug = re.sub(r"[^a-z0-9_.-]+", "-", name.lower())
    slug = re.sub(r"^[^a-z0-9]+", "", slug).rstrip("-")  # the id starts with [a-z0-9]
    return (slug or "chain")[:128]


class ChainNotFoundError(LookupError):
    pass


class ChainExistsError(Exception):
    pass


class ChainRepository:
    def __init__(self, pool: asyncpg.Pool, arango: ArangoStore | None = None) -> None:
        self._pool = pool
        self._arango = arango

    async def create(self, body: ChainDefinitionIn) -> ChainDefinition:
        row = await self._pool.fetchrow(
            "INSERT INTO chain_definitions (id, name, entry_service, steps, sla_p99_ms)"
            " VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (id) DO NOTHING RETURNING *",
            chain_id(body.name),
            body.name,
            body.entry_service,
            _steps(body),
            body.sla_p99_ms,
        )
        if row is None:
            raise ChainExistsError(f"a chain named {body.name!r} exists")
        definition = _definition(row)
        await self._graph(definition)
        return definition

    async def replace(self, identifier: str, body: ChainDefinitionIn) -> ChainDefinition:
        row = await self._pool.fetchrow(
            "UPDATE chain_definitions SET name = $2, entry_service = $3, steps = $4::jsonb,"
            " sla_p99_ms = $5, version = version + 1, updated_at = now() WHERE id = $1"
            " RETURNING *",
            identifier,
            body.name,
            body.entry_service,
            _steps(body),
            body.sla_p99_ms,
        )
        if row is None:
            raise ChainNotFoundError(identifier)
        definition = _definition(row)
        await self._graph(definition)
        return definition

    async def get(self, identifier: str) -> ChainDefinition:
        row = await self._pool.fetchrow("SELECT * FROM chain_definitions WHERE id = $1", identifier)
        if row is None:
            raise ChainNotFoundError(identifier)
        return _definition(row)

    async def all(self) -> list[ChainDefinition]:
        rows = await self._pool.fetch("SELECT * FROM chain_definitions ORDER BY id")
        return [_definition(r) for r in rows]

    async def delete(self, identifier: str) -> None:
        status = await self._pool.execute("DELETE FROM chain_definitions WHERE id = $1", identifier)
        if status.endswith(" 0"):
            raise ChainNotFoundError(identifier)
        if self._arango is not None:
            await asyncio.to_thread(_remove_edges, self._arango.db, identifier)

    async def _graph(self, definition: ChainDefinition) -> None:
        if self._arango is not None:
            await asyncio.to_thread(_write_graph, self._arango.db, definition)


def _steps(body: ChainDefinitionIn) -> str:
    return json.dumps([s.model_dump() for s in body.steps])


def _definition(row: Any) -> ChainDefinition:
    return ChainDefinition(
        id=row["id"],
        name=row["name"],
        entry_service=row["entry_service"],
        steps=json.loads(row["steps"]),
        sla_p99_ms=row["sla_p99_ms"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _write_graph(db: Any, definition: ChainDefinition) -> None:
    services = db.collection("services")
    calls = db.collection("calls")
    _remove_edges(db, definition.id)
    names = [definition.entry_service, *(s.service for s in definition.steps)]
    for name in dict.fromkeys(names):
        if not services.has(name):
            services.insert({"_key": name})
    for position, (caller, callee) in enumerate(itertools.pairwise(names)):
        calls.insert(
            {
                "_from": f"services/{caller}",
                "_to": f"services/{callee}",
                "chain_id": definition.id,
                "position": position,
                "operation": definition.steps[position].operation,
            }
        )


def _remove_edges(db: Any, identifier: str) -> None:
    db.aql.execute(
        "FOR c IN calls FILTER c.chain_id == @id REMOVE c IN calls", bind_vars={"id": identifier}
    )
