"""What database-service's routes depend on, typed: the databases, a repository per resource,
the calling service, and one wrapper that turns a lost connection into 503 naming the
database.

A database that is down or not configured only fails the endpoints that need it (503 naming
it, with the hub's reason); the service stays in rotation (docs/decisions/0008-readiness.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Request
from prometheus_client import Histogram

from aitrading.core.infrastructure.central_hub import CentralHub, HealthStatus
from aitrading.core.security.service_identity import ServiceTokenVerifier
from aitrading.core.stores.components import StoreComponent
from aitrading.services.common.dependencies import calling_service
from aitrading.services.common.http import ApiError, error_responses
from aitrading.services.database_service.accounts import AccountRepository
from aitrading.services.database_service.chain_outcomes import ChainOutcomeRepository
from aitrading.services.database_service.chains import ChainRepository
from aitrading.services.database_service.dead_letters import DeadLetterRepository
from aitrading.services.database_service.error_groups import ErrorGroupRepository
from aitrading.services.database_service.ticks import TickRepository

_log = logging.getLogger(__name__)
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Databases:
    """The hub's store components, looked up by the routes; 503 when one is unavailable."""

    hub: CentralHub
    components: dict[str, StoreComponent[Any]] = field(default_factory=dict)
    query_seconds: Histogram | None = None
    # None when writes need no identity (development on loopback, unless asked for)
    verifier: ServiceTokenVerifier | None = None

    def store(self, name: str) -> Any:
        component = self.components.get(name)
        if component is None:
            raise ApiError(
                503, "database_not_configured", f"{name} is not configured on this deployment"
            )
        health = self.hub.health().components.get(name)
        if component.store is None or (health and health.status is HealthStatus.UNHEALTHY):
            reason = health.reason if health else "not connected"
            raise ApiError(503, "database_unavailable", f"{name} is unavailable: {reason}")
        return component.store

    def configured(self, name: str) -> bool:
        return name in self.components


async def databases_of(request: Request) -> Databases:
    databases: Databases = request.app.state.databases
    return databases


Db = Annotated[Databases, Depends(databases_of)]


async def service_identity(request: Request, databases: Db) -> None:
    """Writes need a service token from a known caller when the service requires identity
    (always in production): being on the cluster network proves nothing."""
    if databases.verifier is None or request.method in _READS:
        return
    refusal = "writes need a service token of a known caller"
    request.state.caller = calling_service(databases.verifier, request, refusal)


def resource_router(tag: str) -> APIRouter:
    """A router for one resource under /api/v1: writes need a known service's token."""
    return APIRouter(
        prefix="/api/v1",
        tags=[tag],
        dependencies=[Depends(service_identity)],
        responses=error_responses(400, 401, 422, 503),
    )


async def _ticks(databases: Db) -> TickRepository:
    return TickRepository(databases.store("clickhouse"))


async def _dead_letters(databases: Db) -> DeadLetterRepository:
    return DeadLetterRepository(databases.store("clickhouse"))


async def _accounts(databases: Db) -> AccountRepository:
    return AccountRepository(databases.store("clickhouse"))


async def _chains(databases: Db) -> ChainRepository:
    arango = databases.store("arango") if databases.configured("arango") else None
    return ChainRepository(databases.store("postgres").pool, arango)


async def _chain_outcomes(databases: Db) -> ChainOutcomeRepository:
    return ChainOutcomeRepository(databases.store("postgres").pool)


async def _error_groups(databases: Db) -> ErrorGroupRepository:
    weaviate = databases.store("weaviate") if databases.configured("weaviate") else None
    return ErrorGroupRepository(databases.store("postgres").pool, weaviate)


TickRepo = Annotated[TickRepository, Depends(_ticks)]
DeadLetterRepo = Annotated[DeadLetterRepository, Depends(_dead_letters)]
AccountRepo = Annotated[AccountRepository, Depends(_accounts)]
ChainRepo = Annotated[ChainRepository, Depends(_chains)]
ChainOutcomeRepo = Annotated[ChainOutcomeRepository, Depends(_chain_outcomes)]
ErrorGroupRepo = Annotated[ErrorGroupRepository, Depends(_error_groups)]

_UNAVAILABLE = (
    OSError,
    ConnectionError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
)


@asynccontextmanager
async def database_call(databases: Databases, database: str, operation: str) -> AsyncIterator[None]:
    """Time one database operation; a lost connection becomes 503 naming the database."""
    started = time.perf_counter()
    try:
        yield
    except _UNAVAILABLE as exc:
        raise ApiError(
            503, "database_unavailable", f"{database} is unavailable: {type(exc).__name__}"
        ) from exc
    except asyncpg.UniqueViolationError as exc:
        raise ApiError(409, "conflict", f"{database}: this already exists") from exc
    except (asyncpg.DataError, asyncpg.CheckViolationError, UnicodeEncodeError) as exc:
        # A value the database cannot hold (NUL, an unpaired surrogate, out of range) that
        # came in through a path or query parameter: the caller's input, not our failure.
        raise ApiError(
            422, "validation_failed", f"{database} cannot store or compare this value"
        ) from exc
    except Exception as exc:
        if type(exc).__module__.startswith("clickhouse_connect") and "connect" in str(exc).lower():
            raise ApiError(503, "database_unavailable", f"{database} is unavailable") from exc
        raise
    finally:
        if databases.query_seconds is not None:
            databases.query_seconds.labels(database, operation).observe(
                time.perf_counter() - started
            )
