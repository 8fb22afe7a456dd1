"""database-service HTTP API (`/api/v1`): typed endpoints, never raw SQL."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, Response

from aitrading.core.infrastructure.error_handler import (
    ErrorCategory,
    ErrorOccurrence,
    signature_digest,
)
from aitrading.core.security.service_identity import HEADER as SERVICE_TOKEN_HEADER
from aitrading.core.security.service_identity import (
    ServiceIdentityError,
    ServiceTokenVerifier,
)
from aitrading.services.common.http import ApiError, error_responses
from aitrading.services.database_service.accounts import AccountRepository
from aitrading.services.database_service.app import Databases
from aitrading.services.database_service.chains import (
    ChainExistsError,
    ChainNotFoundError,
    ChainRepository,
)
from aitrading.services.database_service.dead_letters import (
    DeadLetter,
    DeadLetterRepository,
    DeadLetters,
)
from aitrading.services.database_service.error_groups import ErrorGroupRepository
from aitrading.services.database_service.models import (
    SYMBOL_FIELD,
    AccountSnapshot,
    AccountSnapshots,
    Bars,
    ChainDefinition,
    ChainDefinitionIn,
    ErrorGroupOut,
    ErrorOccurrenceIn,
    SimilarErrorGroup,
    TickBatch,
    TickBatchResult,
    TickPage,
    Timeframe,
)
from aitrading.services.database_service.ticks import CursorError, TickRepository

_log = logging.getLogger(__name__)
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


async def service_identity(request: Request) -> None:
    """Writes need a service token from a known caller when the service requires identity
    (always in production): being on the cluster network proves nothing."""
    verifier: ServiceTokenVerifier | None = request.app.state.service_verifier
    if verifier is None or request.method in _READS:
        return
    try:
        request.state.caller = verifier.verify(request.headers.get(SERVICE_TOKEN_HEADER))
    except ServiceIdentityError as exc:
        _log.warning("write refused without service identity: %s", exc)
        raise ApiError(
            401, "service_identity_required", "writes need a service token of a known caller"
        ) from None


router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(service_identity)],
    responses=error_responses(400, 401, 422, 503),
)

Symbol = Annotated[str, Query(pattern=SYMBOL_FIELD, description="e.g. EURUSD")]
# The last instant ClickHouse's DateTime64 holds (2299-12-31T23:59:59.999Z): a range bound
# beyond it, or beyond Int64, cannot be compared in a query and is refused up front (422).
QUERY_MAX_MSC = 10_413_791_999_999
StartMsc = Annotated[int, Query(ge=0, le=QUERY_MAX_MSC, description="inclusive, ms since epoch")]
EndMsc = Annotated[int, Query(ge=0, le=QUERY_MAX_MSC, description="exclusive, ms since epoch")]

_UNAVAILABLE = (
    OSError,
    ConnectionError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
)


def _databases(request: Request) -> Databases:
    databases: Databases = request.app.state.databases
    return databases


@asynccontextmanager
async def _call(databases: Databases, database: str, operation: str) -> AsyncIterator[None]:
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


def _range(start: int, end: int) -> None:
    if end <= start:
        raise ApiError(
            422,
            "validation_failed",
            "end must be after start",
            [{"location": "query.end", "field": "end", "reason": "must be > start"}],
        )


@router.post(
    "/ticks/batch",
    response_model=TickBatchResult,
    tags=["ticks"],
    summary="Store a batch of ticks: validated, all or nothing, idempotent",
)
async def post_ticks(batch: TickBatch, request: Request) -> TickBatchResult:
    """Ticks whose identity (source, symbol, time_msc, sequence) is already stored are not
    written again; the answer counts the new ones. A batch with any invalid tick is refused
    whole (422, each bad item listed with its index)."""
    databases = _databases(request)
    repo = TickRepository(databases.store("clickhouse"))
    async with _call(databases, "clickhouse", "insert_ticks"):
        return await repo.insert_batch(batch.ticks)


@router.post(
    "/ticks/dead-letters",
    tags=["ticks"],
    status_code=201,
    summary="Keep ticks that were acked but that storage refused, with the reason",
)
async def post_dead_letters(body: DeadLetters, request: Request) -> dict[str, int]:
    databases = _databases(request)
    repo = DeadLetterRepository(databases.store("clickhouse"))
    async with _call(databases, "clickhouse", "insert_dead_letters"):
        return {"stored": await repo.add(body.letters)}


@router.get(
    "/ticks/dead-letters",
    response_model=list[DeadLetter],
    tags=["ticks"],
    summary="The latest dead letters, newest first",
)
async def get_dead_letters(
    request: Request, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> list[DeadLetter]:
    databases = _databases(request)
    repo = DeadLetterRepository(databases.store("clickhouse"))
    async with _call(databases, "clickhouse", "query_dead_letters"):
        return await repo.latest(limit)


@router.get(
    "/ticks",
    response_model=TickPage,
    tags=["ticks"],
    summary="Ticks of one symbol in a time range, in time order, paged",
)
async def get_ticks(
    request: Request,
    symbol: Symbol,
    start: StartMsc,
    end: EndMsc,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> TickPage:
    _range(start, end)
    databases = _databases(request)
    repo = TickRepository(databases.store("clickhouse"))
    try:
        async with _call(databases, "clickhouse", "query_ticks"):
            ticks, next_cursor = await repo.query(symbol, start, end, limit, cursor)
    except CursorError:
        raise ApiError(422, "validation_failed", "cursor was not issued by this service") from None
    return TickPage(ticks=ticks, next_cursor=next_cursor)


@router.get(
    "/ohlcv",
    response_model=Bars,
    tags=["ticks"],
    summary="OHLCV bars (bid prices) from the one-minute materialised view",
)
async def get_ohlcv(
    request: Request, symbol: Symbol, timeframe: Timeframe, start: StartMsc, end: EndMsc
) -> Bars:
    _range(start, end)
    databases = _databases(request)
    repo = TickRepository(databases.store("clickhouse"))
    async with _call(databases, "clickhouse", "ohlcv"):
        bars = await repo.ohlcv(symbol, timeframe, start, end)
    return Bars(symbol=symbol, timeframe=timeframe, bars=bars)


@router.post(
    "/accounts/snapshots", tags=["accounts"], status_code=201, summary="Store MT5 account snapshots"
)
async def post_account_snapshots(body: AccountSnapshots, request: Request) -> dict[str, int]:
    databases = _databases(request)
    repo = AccountRepository(databases.store("clickhouse"))
    async with _call(databases, "clickhouse", "insert_accounts"):
        return {"stored": await repo.insert(body.snapshots)}


@router.get(
    "/accounts/{login}/snapshots",
    response_model=list[AccountSnapshot],
    tags=["accounts"],
    summary="Latest snapshots of one account, newest first",
)
async def get_account_snapshots(
    login: int, request: Request, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> list[AccountSnapshot]:
    databases = _databases(request)
    repo = AccountRepository(databases.store("clickhouse"))
    async with _call(databases, "clickhouse", "query_accounts"):
        return await repo.latest(login, limit)


def _chains(request: Request) -> tuple[Databases, ChainRepository]:
    databases = _databases(request)
    arango = databases.store("arango") if databases.configured("arango") else None
    return databases, ChainRepository(databases.store("postgres").pool, arango)


@router.get(
    "/chains",
    response_model=list[ChainDefinition],
    tags=["chains"],
    summary="Every chain definition",
)
async def list_chains(request: Request) -> list[ChainDefinition]:
    databases, repo = _chains(request)
    async with _call(databases, "postgres", "list_chains"):
        return await repo.all()


@router.post(
    "/chains",
    response_model=ChainDefinition,
    status_code=201,
    tags=["chains"],
    summary="Define a chain (PostgreSQL; the graph in ArangoDB when configured)",
    responses=error_responses(409),
)
async def create_chain(body: ChainDefinitionIn, request: Request) -> ChainDefinition:
    databases, repo = _chains(request)
    try:
        async with _call(databases, "postgres", "create_chain"):
            return await repo.create(body)
    except ChainExistsError as exc:
        raise ApiError(409, "conflict", str(exc)) from None


@router.get(
    "/chains/{chain_id}",
    response_model=ChainDefinition,
    tags=["chains"],
    responses=error_responses(404),
)
async def get_chain(chain_id: str, request: Request) -> ChainDefinition:
    databases, repo = _chains(request)
    try:
        async with _call(databases, "postgres", "get_chain"):
            return await repo.get(chain_id)
    except ChainNotFoundError:
        raise ApiError(404, "not_found", f"no chain {chain_id!r}") from None


@router.put(
    "/chains/{chain_id}",
    response_model=ChainDefinition,
    tags=["chains"],
    responses=error_responses(404),
)
async def replace_chain(
    chain_id: str, body: ChainDefinitionIn, request: Request
) -> ChainDefinition:
    databases, repo = _chains(request)
    try:
        async with _call(databases, "postgres", "replace_chain"):
            return await repo.replace(chain_id, body)
    except ChainNotFoundError:
        raise ApiError(404, "not_found", f"no chain {chain_id!r}") from None


@router.delete(
    "/chains/{chain_id}", status_code=204, tags=["chains"], responses=error_responses(404)
)
async def delete_chain(chain_id: str, request: Request) -> Response:
    databases, repo = _chains(request)
    try:
        async with _call(databases, "postgres", "delete_chain"):
            await repo.delete(chain_id)
    except ChainNotFoundError:
        raise ApiError(404, "not_found", f"no chain {chain_id!r}") from None
    return Response(status_code=204)


def _errors(request: Request) -> tuple[Databases, ErrorGroupRepository]:
    databases = _databases(request)
    weaviate = databases.store("weaviate") if databases.configured("weaviate") else None
    return databases, ErrorGroupRepository(databases.store("postgres").pool, weaviate)


@router.post(
    "/error-groups/occurrences",
    response_model=ErrorGroupOut,
    tags=["errors"],
    summary="Report an analysed error; returns its group with the new count",
)
async def report_error(body: ErrorOccurrenceIn, request: Request) -> ErrorGroupOut:
    if signature_digest(body.signature) != body.fingerprint:
        raise ApiError(
            422,
            "validation_failed",
            "fingerprint does not match the signature",
            [
                {
                    "location": "fingerprint",
                    "field": "fingerprint",
                    "reason": "must be ErrorDNA's hash of `signature`",
                }
            ],
        )
    occurrence = ErrorOccurrence(
        fingerprint=body.fingerprint,
        service=body.service,
        exception_type=body.exception_type,
        category=ErrorCategory(body.category),
        retryable=body.retryable,
        message=body.message,
        sample=body.sample,
        signature=dict(body.signature),
        occurred_at=body.occurred_at,
    )
    databases, repo = _errors(request)
    async with _call(databases, "postgres", "record_error"):
        return await repo.record(occurrence)


@router.get(
    "/error-groups",
    response_model=list[ErrorGroupOut],
    tags=["errors"],
    summary="Error groups, most recently seen first",
)
async def list_error_groups(
    request: Request,
    service: Annotated[str | None, Query(max_length=63)] = None,
    category: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ErrorGroupOut]:
    databases, repo = _errors(request)
    async with _call(databases, "postgres", "list_errors"):
        return await repo.recent(service, category, limit)


@router.get(
    "/error-groups/{fingerprint}/similar",
    response_model=list[SimilarErrorGroup],
    tags=["errors"],
    summary="Nearest error groups by vector (Weaviate)",
    responses=error_responses(404),
)
async def similar_error_groups(
    fingerprint: str, request: Request, limit: Annotated[int, Query(ge=1, le=100)] = 10
) -> list[SimilarErrorGroup]:
    databases, repo = _errors(request)
    if not databases.configured("weaviate"):
        raise ApiError(
            503, "database_not_configured", "weaviate is not configured: set AITRADING_WEAVIATE_URL"
        )
    async with _call(databases, "postgres", "get_error"):
        if await repo.get(fingerprint) is None:
            raise ApiError(404, "not_found", f"no error group {fingerprint!r}")
    async with _call(databases, "weaviate", "similar_errors"):
        if not await repo.has_vector(fingerprint):
            raise ApiError(
                404,
                "not_found",
                f"error group {fingerprint!r} has no vector yet (recorded while Weaviate was"
                " unavailable); it gets one at its next occurrence",
            )
        return await repo.similar(fingerprint, limit)
