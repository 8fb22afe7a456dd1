"""The gateway's one-call admission (`services/api_gateway/admission.py`) decides as
`JWTManager.verify` followed by `RateLimiter.hit` do, against the real Redis."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from aitrading.core.security.jwt_manager import (
    JWTManager,
    KeyRing,
    RejectReason,
    SigningKey,
    TokenRejectedError,
)
from aitrading.core.security.rate_limiter import (
    KEY_PREFIX,
    FailureMode,
    Limit,
    Policy,
    RateLimiter,
    Scope,
)
from aitrading.core.security.token_revocation import RedisRevocationStore
from aitrading.core.stores.redis_store import RedisStore
from aitrading.services.api_gateway.admission import Admission, RevocationUnavailableError

from .conftest import free_port

pytestmark = pytest.mark.integration

ISS, AUD = "https://gateway.aitrading.test", "aitrading-api"


@pytest.fixture
def parts(redis_store: RedisStore) -> tuple[JWTManager, RateLimiter, Admission, CollectorRegistry]:
    registry = CollectorRegistry()
    jwt = JWTManager(
        KeyRing(SigningKey.generate()),
        RedisRevocationStore(redis_store.client),
        issuer=ISS,
        audience=AUD,
        registry=registry,
    )
    limiter = RateLimiter(redis_store.client, registry)
    return jwt, limiter, Admission(redis_store.client, jwt, limiter), registry


def _policy() -> Policy:
    # a name of its own per test: the limit's key must not be shared with another test's
    return Policy(f"adm-{uuid.uuid4().hex[:8]}", {"free": Limit(3, 60)}, FailureMode.OPEN)


async def _token(jwt: JWTManager, sub: str) -> str:
    return (await jwt.issue(sub, "free", 1)).access_token


async def test_a_valid_token_is_charged_to_its_user_until_the_limit(parts: tuple) -> None:
    jwt, _, admission, _ = parts
    policy, sub = _policy(), uuid.uuid4().hex
    claims = jwt.claims(await _token(jwt, sub))
    decisions = [
        (await admission.admit(claims, policy, Scope.USER, "free")).decision for _ in "x" * 5
    ]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert {d.backend for d in decisions} == {"redis"}
    assert decisions[-1].retry_after_s > 0


async def test_the_same_limit_as_the_rate_limiters_own_call(parts: tuple) -> None:
    """One allowance: what `hit` used up, admission sees used up, and the other way round."""
    jwt, limiter, admission, _ = parts
    policy, sub = _policy(), uuid.uuid4().hex
    claims = jwt.claims(await _token(jwt, sub))
    assert (await limiter.hit(policy, Scope.USER, sub)).allowed
    assert (await admission.admit(claims, policy, Scope.USER, "free")).decision.allowed
    assert (await limiter.hit(policy, Scope.USER, sub)).allowed
    assert not (await admission.admit(claims, policy, Scope.USER, "free")).decision.allowed
    assert not (await limiter.hit(policy, Scope.USER, sub)).allowed


@pytest.mark.parametrize("revocation", ["logout", "revoke_all"])
async def test_a_revoked_token_is_refused_and_never_uses_its_users_allowance(
    parts: tuple, redis_store: RedisStore, revocation: str
) -> None:
    jwt, _, admission, registry = parts
    policy, sub = _policy(), uuid.uuid4().hex
    token = await _token(jwt, sub)
    claims = jwt.claims(token)
    if revocation == "logout":
        await jwt.revoke(token)
    else:
        await jwt.revoke_all(sub)
    for _ in range(5):  # more than the limit allows
        with pytest.raises(TokenRejectedError) as refused:
            await admission.admit(claims, policy, Scope.USER, "free")
        assert refused.value.reason is RejectReason.REVOKED
    assert await redis_store.client.exists(f"{KEY_PREFIX}:{policy.name}:user:{sub}") == 0
    sample = {"reason": RejectReason.REVOKED.value}
    assert registry.get_sample_value("aitrading_auth_token_rejections_total", sample) == 5
    fresh = jwt.claims(await _token(jwt, sub))  # a new login of the same user is not limited
    assert (await admission.admit(fresh, policy, Scope.USER, "free")).decision.allowed


async def test_without_redis_the_token_is_refused_not_let_through(parts: tuple) -> None:
    jwt = parts[0]
    dead = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    admission = Admission(dead, jwt, RateLimiter(dead, CollectorRegistry()))
    claims = jwt.claims(await _token(jwt, uuid.uuid4().hex))
    with pytest.raises(RevocationUnavailableError):
        await admission.admit(claims, _policy(), Scope.USER, "free")
    await dead.aclose()
