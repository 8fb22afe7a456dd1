"""Error groups: counts in PostgreSQL (ErrorDNA's store), similarity in Weaviate.

Services report occurrences here; each one is upserted into `error_groups` and, when Weaviate
is configured, its group's vector (computed by `error_vector`, no model) is upserted into the
`ErrorGroup` collection under a UUID derived from the fingerprint.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

from aitrading.core.infrastructure.error_handler import (
    ErrorGroup,
    ErrorOccurrence,
    PostgresErrorGroupStore,
    error_vector,
)
from aitrading.services.database_service.models import ErrorGroupOut, SimilarErrorGroup
from aitrading.services.database_service.schema.weaviate_schema import COLLECTION

if TYPE_CHECKING:
    import asyncpg

    from aitrading.core.stores.weaviate_store import WeaviateStore

_NAMESPACE = uuid.UUID("5d0c8f1e-7a0b-4d8e-9f6a-aa17ad1e0001")


def object_id(fingerprint: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, fingerprint))


class ErrorGroupRepository:
    def __init__(self, pool: asyncpg.Pool, weaviate: WeaviateStore | None = None) -> None:
        self._pool = pool
        self._groups = PostgresErrorGroupStore(pool)
        self._weaviate = weaviate

    async def record(self, occurrence: ErrorOccurrence) -> ErrorGroupOut:
        group = await self._groups.record(occurrence)
        if self._weaviate is not None:
            collection = self._weaviate.client.collections.get(COLLECTION)
            properties = {
                "fingerprint": group.fingerprint,
                "service": group.service,
                "exception_type": group.exception_type,
                "category": group.category.value,
                "message": occurrence.message,
            }
            vector = error_vector(occurrence.signature, occurrence.message)
            uid = object_id(group.fingerprint)
            if await collection.data.exists(uid):
                await collection.data.replace(uuid=uid, properties=properties, vector=vector)
            else:
                await collection.data.insert(properties, uuid=uid, vector=vector)
        return _out(group)

    async def recent(
        self, service: str | None, category: str | None, limit: int
    ) -> list[ErrorGroupOut]:
        rows = await self._pool.fetch(
            "SELECT fingerprint FROM error_groups WHERE ($1::text IS NULL OR service = $1)"
            " AND ($2::text IS NULL OR category = $2) ORDER BY last_seen DESC LIMIT $3",
            service,
            category,
            limit,
        )
        groups = []
        for row in rows:
            group = await self._groups.get(row["fingerprint"])
            if group is not None:
                groups.append(_out(group))
        return groups

    async def get(self, fingerprint: str) -> ErrorGroupOut | None:
        group = await self._groups.get(fingerprint)
        return None if group is None else _out(group)

    async def has_vector(self, fingerprint: str) -> bool:
        """Whether Weaviate holds this group (not when it was recorded while Weaviate was
        down or not configured): a similarity query for a missing object is an error."""
        assert self._weaviate is not None
        collection = self._weaviate.client.collections.get(COLLECTION)
        return bool(await collection.data.exists(object_id(fingerprint)))

    async def similar(self, fingerprint: str, limit: int) -> list[SimilarErrorGroup]:
        assert self._weaviate is not None
        collection = self._weaviate.client.collections.get(COLLECTION)
        found = await collection.query.near_object(
            near_object=object_id(fingerprint), limit=limit + 1, return_metadata=["distance"]
        )
        results = []
        for obj in found.objects:
            props: dict[str, Any] = obj.properties
            if props["fingerprint"] == fingerprint:
                continue
            results.append(
                SimilarErrorGroup(
                    fingerprint=props["fingerprint"],
                    service=props["service"],
                    exception_type=props["exception_type"],
                    category=props["category"],
                    distance=float(
                        obj.metadata.distance if obj.metadata.distance is not None else 2.0
                    ),
                )
            )
        return results[:limit]


def _out(group: ErrorGroup) -> ErrorGroupOut:
    return ErrorGroupOut(
        fingerprint=group.fingerprint,
        service=group.service,
        exception_type=group.exception_type,
        category=group.category.value,
        retryable=group.retryable,
        recovery_hints=list(group.recovery_hints),
        sample=group.sample,
        count=group.count,
        first_seen=dt.datetime.fromtimestamp(group.first_seen, dt.UTC),
        last_seen=dt.datetime.fromtimestamp(group.last_seen, dt.UTC),
    )
