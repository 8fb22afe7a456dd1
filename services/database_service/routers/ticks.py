"""Ticks (ClickHouse): batches in from data-bridge, ranges and bars out, dead letters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request, Response

from aitrading.services.common.http import ApiError
from aitrading.services.database_service.dead_letters import DeadLetter, DeadLetters
from aitrading.services.database_service.deps import (
    Db,
    DeadLetterRepo,
    TickRepo,
    database_call,
    resource_router,
)
from aitrading.services.database_service.models import (
    SYMBOL_FIELD,
    Bars,
    TickBatchResult,
    Timeframe,
)
from aitrading.services.database_service.tick_batches import decode_batch, encode_page
from aitrading.services.database_service.ticks import CursorError

router = resource_router("ticks")

Symbol = Annotated[str, Query(pattern=SYMBOL_FIELD, description="e.g. EURUSD")]
# The last instant ClickHouse's DateTime64 holds (2299-12-31T23:59:59.999Z): a range bound
# beyond it, or beyond Int64, cannot be compared in a query and is refused up front (422).
QUERY_MAX_MSC = 10_413_791_999_999
StartMsc = Annotated[int, Query(ge=0, le=QUERY_MAX_MSC, description="inclusive, ms since epoch")]
EndMsc = Annotated[int, Query(ge=0, le=QUERY_MAX_MSC, description="exclusive, ms since epoch")]


def _body(schema: str) -> dict[str, Any]:
    """A body described by one of the tick schemas (`tick_batches.openapi_components`)."""
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"required": True, "content": {"application/json": {"schema": ref}}}


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
    summary="Store a batch of ticks: validated, all or nothing, idempotent",
    openapi_extra={"requestBody": _body("TickBatch")},
)
async def post_ticks(request: Request, databases: Db, repo: TickRepo) -> TickBatchResult:
    """Ticks whose identity (source, symbol, time_msc, sequence) is already stored are not
    written again; the answer counts the new ones. A batch with any invalid tick is refused
    whole (422, each bad item listed with its index)."""
    ticks = decode_batch(await request.body())
    async with database_call(databases, "clickhouse", "insert_ticks"):
        return await repo.insert_batch(ticks)


@router.post(
    "/ticks/dead-letters",
    status_code=201,
    summary="Keep ticks that were acked but that storage refused, with the reason",
)
async def post_dead_letters(
    body: DeadLetters, databases: Db, repo: DeadLetterRepo
) -> dict[str, int]:
    async with database_call(databases, "clickhouse", "insert_dead_letters"):
        return {"stored": await repo.add(body.letters)}


@router.get(
    "/ticks/dead-letters",
    response_model=list[DeadLetter],
    summary="The latest dead letters, newest first",
)
async def get_dead_letters(
    databases: Db, repo: DeadLetterRepo, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> list[DeadLetter]:
    async with database_call(databases, "clickhouse", "query_dead_letters"):
        return await repo.latest(limit)


@router.get(
    "/ticks",
    summary="Ticks of one symbol in a time range, in time order, paged",
    response_class=Response,
    responses={200: {"description": "a page of ticks", "content": _body("TickPage")["content"]}},
)
async def get_ticks(
    databases: Db,
    repo: TickRepo,
    symbol: Symbol,
    start: StartMsc,
    end: EndMsc,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    _range(start, end)
    try:
        async with database_call(databases, "clickhouse", "query_ticks"):
            ticks, next_cursor = await repo.query(symbol, start, end, limit, cursor)
    except CursorError:
        raise ApiError(422, "validation_failed", "cursor was not issued by this service") from None
    return Response(encode_page(ticks, next_cursor), media_type="application/json")


@router.get(
    "/ohlcv",
    response_model=Bars,
    summary="OHLCV bars (bid prices) from the one-minute materialised view",
)
async def get_ohlcv(
    databases: Db,
    repo: TickRepo,
    symbol: Symbol,
    timeframe: Timeframe,
    start: StartMsc,
    end: EndMsc,
) -> Bars:
    _range(start, end)
    async with database_call(databases, "clickhouse", "ohlcv"):
        bars = await repo.ohlcv(symbol, timeframe, start, end)
    return Bars(symbol=symbol, timeframe=timeframe, bars=bars)
