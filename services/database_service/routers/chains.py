"""Call-chain definitions (PostgreSQL; the graph in ArangoDB when configured)."""

from __future__ import annotations

from fastapi import Response

from aitrading.services.common.http import ApiError, error_responses
from aitrading.services.database_service.chains import ChainExistsError, ChainNotFoundError
from aitrading.services.database_service.deps import ChainRepo, Db, database_call, resource_router
from aitrading.services.database_service.models import ChainDefinition, ChainDefinitionIn

router = resource_router("chains")


@router.get(
    "/chains",
    response_model=list[ChainDefinition],
    summary="Every chain definition",
)
async def list_chains(databases: Db, repo: ChainRepo) -> list[ChainDefinition]:
    async with database_call(databases, "postgres", "list_chains"):
        return await repo.all()


@router.post(
    "/chains",
    response_model=ChainDefinition,
    status_code=201,
    summary="Define a chain (PostgreSQL; the graph in ArangoDB when configured)",
    responses=error_responses(409),
)
async def create_chain(body: ChainDefinitionIn, databases: Db, repo: ChainRepo) -> ChainDefinition:
    try:
        async with database_call(databases, "postgres", "create_chain"):
            return await repo.create(body)
    except ChainExistsError as exc:
        raise ApiError(409, "conflict", str(exc)) from None


@router.get(
    "/chains/{chain_id}",
    response_model=ChainDefinition,
    responses=error_responses(404),
)
async def get_chain(chain_id: str, databases: Db, repo: ChainRepo) -> ChainDefinition:
    try:
        async with database_call(databases, "postgres", "get_chain"):
            return await repo.get(chain_id)
    except ChainNotFoundError:
        raise ApiError(404, "not_found", f"no chain {chain_id!r}") from None


@router.put(
    "/chains/{chain_id}",
    response_model=ChainDefinition,
    responses=error_responses(404),
)
async def replace_chain(
    chain_id: str, body: ChainDefinitionIn, databases: Db, repo: ChainRepo
) -> ChainDefinition:
    try:
        async with database_call(databases, "postgres", "replace_chain"):
            return await repo.replace(chain_id, body)
    except ChainNotFoundError:
        raise ApiError(404, "not_found", f"no chain {chain_id!r}") from None


@router.delete("/chains/{chain_id}", status_code=204, responses=error_responses(404))
async def delete_chain(chain_id: str, databases: Db, repo: ChainRepo) -> Response:
    try:
        async with database_call(databases, "postgres", "delete_chain"):
            await repo.delete(chain_id)
    except ChainNotFoundError:
        raise ApiError(404, "not_found", f"no chain {chain_id!r}") from None
    return Response(status_code=204)
