"""What every service's `deps.py` does the same way: a part of the lifespan's state that may
not be built yet, and a caller that must prove which service it is.

Every dependency a route declares is an `async def`, even when it only reads an attribute:
FastAPI runs a plain `def` dependency in its thread pool, a thread hop and a GIL hand-off per
dependency per request. The gateway's profile showed them as its largest avoidable cost
(`tests/integration/test_dependencies.py` keeps it so)."""

from __future__ import annotations

import logging
from typing import TypeVar

from starlette.requests import HTTPConnection

from aitrading.core.security.service_identity import HEADER as SERVICE_TOKEN_HEADER
from aitrading.core.security.service_identity import ServiceIdentityError, ServiceTokenVerifier
from aitrading.services.common.http import ApiError

_log = logging.getLogger(__name__)
T = TypeVar("T")


def available(part: T | None, starting: str) -> T:
    """`part` once the lifespan built it; before (or after shutdown began) 503 `starting`."""
    if part is None:
        raise ApiError(503, "unavailable", starting)
    return part


def calling_service(verifier: ServiceTokenVerifier, conn: HTTPConnection, refusal: str) -> str:
    """The service whose token this request carries; 401 `refusal` without a valid one
    (being on the cluster network proves nothing)."""
    try:
        return verifier.verify(conn.headers.get(SERVICE_TOKEN_HEADER))
    except ServiceIdentityError as exc:
        _log.warning("request refused without service identity: %s", exc)
        raise ApiError(401, "service_identity_required", refusal) from None
