"""The JWT attack suite against the real revocation store (embedded redis-server)."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from aitrading.core.security.jwt_manager import (
    ALGORITHM,
    JWTManager,
    KeyRing,
    RejectReason,
    SigningKey,
    TokenRejectedError,
)
from aitrading.core.security.token_revocation import RedisRevocationStore
from aitrading.core.stores.redis_store import RedisStore
from tests.support.waiting import until

pytestmark = pytest.mark.integration

ISS, AUD = "https://gateway.aitrading.test", "aitrading-api"


@pytest.fixture
def keys() -> KeyRing:
    return KeyRing(SigningKey.generate())


@pytest.fixture
def manager(keys: KeyRing, redis_store: RedisStore) -> JWTManager:
    return JWTManager(keys, RedisRevocationStore(redis_store.client), issuer=ISS, audience=AUD)


def forge(keys: KeyRing, **changes: object) -> str:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "u1",
        "tier": "pro",
        "ent_ver": 1,
        "tv": 0,
        "typ": "access",
        "jti": uuid.uuid4().hex,
        "iss": ISS,
        "aud": AUD,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(
        claims, keys.active.private_key, algorithm=ALGORITHM, headers={"kid": keys.active.kid}
    )


async def rejected(manager: JWTManager, token: str, reason: RejectReason) -> None:
    with pytest.raises(TokenRejectedError) as caught:
        await manager.verify(token)
    assert caught.value.reason is reason, caught.value


async def test_rejections_are_logged_and_counted_without_the_token(
    keys: KeyRing, redis_store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    manager = JWTManager(
        keys, RedisRevocationStore(redis_store.client), issuer=ISS, audience=AUD, registry=registry
    )
    token = forge(keys, aud="elsewhere")
    with caplog.at_level("WARNING", logger="aitrading.core.security.jwt_manager"):
        await rejected(manager, token, RejectReason.WRONG_AUDIENCE)
    assert "token rejected: wrong_audience" in caplog.text
    assert token not in caplog.text
    sample = registry.get_sample_value(
        "aitrading_auth_token_rejections_total", {"reason": "wrong_audience"}
    )
    assert sample == 1


async def test_valid_token_round_trip(manager: JWTManager) -> None:
    pair = await manager.issue("u1", "pro", 3)
    claims = await manager.verify(pair.access_token)
    assert (claims["sub"], claims["tier"], claims["ent_ver"]) == ("u1", "pro", 3)
    assert claims["exp"] - claims["iat"] == 600


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_alg_none_is_refused(manager: JWTManager, keys: KeyRing) -> None:
    payload = jwt.decode(forge(keys), options={"verify_signature": False})
    token = f"{_b64({'alg': 'none', 'kid': keys.active.kid})}.{_b64(payload)}."
    await rejected(manager, token, RejectReason.WRONG_ALGORITHM)


async def test_hs256_signed_with_the_public_key_is_refused(
    manager: JWTManager, keys: KeyRing
) -> None:
    public_pem = keys.active.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": keys.active.kid})
    payload = _b64(jwt.decode(forge(keys), options={"verify_signature": False}))
    import hashlib
    import hmac

    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    await rejected(manager, token, RejectReason.WRONG_ALGORITHM)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, RejectReason.EXPIRED),
        ({"nbf": int(time.time()) + 3600}, RejectReason.NOT_YET_VALID),
        ({"iss": "https://evil.example"}, RejectReason.WRONG_ISSUER),
        ({"aud": "someone-else"}, RejectReason.WRONG_AUDIENCE),
        ({"jti": None}, RejectReason.MISSING_CLAIM),
        ({"typ": "refresh", "fam": "x"}, RejectReason.WRONG_TYPE),
    ],
)
async def test_claim_attacks(
    manager: JWTManager, keys: KeyRing, changes: dict[str, object], reason: RejectReason
) -> None:
    await rejected(manager, forge(keys, **changes), reason)


async def test_unknown_kid(manager: JWTManager) -> None:
    stranger = KeyRing(SigningKey.generate())
    await rejected(manager, forge(stranger), RejectReason.UNKNOWN_KEY)


async def test_tampered_payload_and_truncation(manager: JWTManager, keys: KeyRing) -> None:
    header, payload, signature = forge(keys).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["tier"] = "enterprise"
    await rejected(manager, f"{header}.{_b64(claims)}.{signature}", RejectReason.BAD_SIGNATURE)
    await rejected(manager, f"{header}.{payload}", RejectReason.MALFORMED)
    await rejected(manager, f"{header}.{payload}.{signature[:-10]}", RejectReason.BAD_SIGNATURE)


async def test_oversized_token(manager: JWTManager, keys: KeyRing) -> None:
    await rejected(manager, forge(keys, pad="x" * 16_000), RejectReason.TOO_LARGE)


async def test_revoked_jti_and_revoke_all(manager: JWTManager) -> None:
    pair = await manager.issue("u-revoke", "basic", 1)
    await manager.revoke(pair.access_token)
    await rejected(manager, pair.access_token, RejectReason.REVOKED)

    first = await manager.issue("u-all", "basic", 1)
    await manager.revoke_all("u-all")
    await rejected(manager, first.access_token, RejectReason.REVOKED)
    fresh = await manager.issue("u-all", "basic", 1)
    assert (await manager.verify(fresh.access_token))["sub"] == "u-all"


async def test_reused_refresh_token_revokes_the_family(manager: JWTManager) -> None:
    pair = await manager.issue("u-refresh", "pro", 1)
    rotated = await manager.refresh(pair.refresh_token, "pro", 1)
    with pytest.raises(TokenRejectedError) as caught:
        await manager.refresh(pair.refresh_token, "pro", 1)
    assert caught.value.reason is RejectReason.REFRESH_REUSED
    with pytest.raises(TokenRejectedError) as caught:
        await manager.refresh(rotated.refresh_token, "pro", 1)
    assert caught.value.reason is RejectReason.REVOKED


async def test_key_rotation_keeps_old_tokens_valid_and_publishes_both(
    manager: JWTManager, keys: KeyRing
) -> None:
    before = await manager.issue("u-rot", "pro", 1)
    old_kid = keys.active.kid
    keys.rotate()
    after = await manager.issue("u-rot", "pro", 1)
    assert jwt.get_unverified_header(after.access_token)["kid"] == keys.active.kid != old_kid
    assert (await manager.verify(before.access_token))["sub"] == "u-rot"
    kids = [k["kid"] for k in keys.jwks()["keys"]]
    assert kids == [keys.active.kid, old_kid]
    assert all(
        k["kty"] == "OKP" and k["crv"] == "Ed25519" and "d" not in k for k in keys.jwks()["keys"]
    )


def test_leeway_is_capped(keys: KeyRing, redis_store: RedisStore) -> None:
    with pytest.raises(ValueError, match="leeway"):
        JWTManager(
            keys, RedisRevocationStore(redis_store.client), issuer=ISS, audience=AUD, leeway_s=60
        )


async def test_a_token_verified_before_skips_the_signature_but_not_what_can_change(
    keys: KeyRing, redis_store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second request with a token does not verify its signature again; revocation, the
    key's retirement and expiry still refuse it, with their own reasons."""
    import aitrading.core.security.jwt_manager as jwt_manager

    manager = JWTManager(
        keys, RedisRevocationStore(redis_store.client), issuer=ISS, audience=AUD, leeway_s=0
    )
    signature_checks = 0
    real_decode = jwt_manager.jwt.decode

    def counting_decode(*args: object, **kwargs: object) -> object:
        nonlocal signature_checks
        signature_checks += 1
        return real_decode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt_manager.jwt, "decode", counting_decode)
    pair = await manager.issue("u-cache", "pro", 1)
    for _ in range(3):
        assert (await manager.verify(pair.access_token))["sub"] == "u-cache"
    assert signature_checks == 1
    claims = await manager.verify(pair.access_token)
    claims["sub"] = "someone else"  # a caller's copy; the cache keeps its own
    assert (await manager.verify(pair.access_token))["sub"] == "u-cache"
    with pytest.raises(TokenRejectedError) as caught:
        await manager.verify(pair.refresh_token)  # its type is checked on every call
    assert caught.value.reason is RejectReason.WRONG_TYPE

    await manager.revoke(pair.access_token)
    await rejected(manager, pair.access_token, RejectReason.REVOKED)

    retired = await manager.issue("u-cache", "pro", 1)
    assert (await manager.verify(retired.access_token))["sub"] == "u-cache"
    keys.rotate(keep_retired=0)  # its key leaves the ring
    await rejected(manager, retired.access_token, RejectReason.UNKNOWN_KEY)

    short = JWTManager(
        keys,
        RedisRevocationStore(redis_store.client),
        issuer=ISS,
        audience=AUD,
        access_ttl_s=1,
        leeway_s=0,
    )
    expiring = await short.issue("u-cache", "pro", 1)
    exp = int(jwt.decode(expiring.access_token, options={"verify_signature": False})["exp"])
    assert (await short.verify(expiring.access_token))["sub"] == "u-cache"
    await until(lambda: time.time() > exp + 0.2, "the token's expiry passed")
    await rejected(short, expiring.access_token, RejectReason.EXPIRED)
