"""ErrorDNA's error groups (PostgreSQL) and their nearest neighbours (Weaviate)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from aitrading.core.infrastructure.error_handler import (
    ErrorCategory,
    ErrorOccurrence,
    signature_digest,
)
from aitrading.services.common.http import ApiError, error_responses
from aitrading.services.database_service.deps import (
    Db,
    ErrorGroupRepo,
    database_call,
    resource_router,
)
from aitrading.services.database_service.models import (
    ErrorGroupOut,
    ErrorOccurrenceIn,
    SimilarErrorGroup,
)

router = resource_router("errors")


@router.post(
    "/error-groups/occurrences",
    response_model=ErrorGroupOut,
    summary="Report an analysed error; returns its group with the new count",
)
async def report_error(
    body: ErrorOccurrenceIn, databases: Db, repo: ErrorGroupRepo
) -> ErrorGroupOut:
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
    async with database_call(databases, "postgres", "record_error"):
        return await repo.record(occurrence)


@router.get(
    "/error-groups",
    response_model=list[ErrorGroupOut],
    summary="Error groups, most recently seen first",
)
async def list_error_groups(
    databases: Db,
    repo: ErrorGroupRepo,
    service: Annotated[str | None, Query(max_length=63)] = None,
    category: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ErrorGroupOut]:
    async with database_call(databases, "postgres", "list_errors"):
        return await repo.recent(service, category, limit)


@router.get(
    "/error-groups/{fingerprint}/similar",
    response_model=list[SimilarErrorGroup],
    summary="Nearest error groups by vector (Weaviate)",
    responses=error_responses(404),
)
async def similar_error_groups(
    fingerprint: str,
    databases: Db,
    repo: ErrorGroupRepo,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[SimilarErrorGroup]:
    if not databases.configured("weaviate"):
        raise ApiError(
            503, "database_not_configured", "weaviate is not configured: set AITRADING_WEAVIATE_URL"
        )
    async with database_call(databases, "postgres", "get_error"):
        if await repo.get(fingerprint) is None:
            raise ApiError(404, "not_found", f"no error group {fingerprint!r}")
    async with database_call(databases, "weaviate", "similar_errors"):
        if not await repo.has_vector(fingerprint):
            raise ApiError(
                404,
                "not_found",
                f"error group {fingerprint!r} has no vector yet (recorded while Weaviate was"
                " unavailable); it gets one at its next occurrence",
            )
        return await repo.similar(fingerprint, limit)
