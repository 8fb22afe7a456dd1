"""Token revocation state in the Redis-protocol store (DragonflyDB in production).

Every key expires with the tokens it speaks for, so the denylist never grows without bound.
Refresh rotation is one Lua script over its declared keys only: compare the family's current
refresh jti and swap it atomically, so two concurrent uses of one refresh token cannot both
succeed.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

PREFIX = "aitrading:jwt"

# KEYS[1] family's current refresh jti; ARGV: presented jti, next jti, ttl seconds.
_ROTATE = """
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
"""


def state_keys(jti: str, sub: str, family: str | None) -> tuple[str, str, str]:
    """The keys of a token's revocation state: its jti's denial, its user's token version, its
    refresh family's revocation (a key that never exists for a token without a family)."""
    return f"{PREFIX}:deny:{jti}", f"{PREFIX}:tv:{sub}", f"{PREFIX}:famrev:{family or '-'}"


class RedisRevocationStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        self._rotate: Any = client.register_script(_ROTATE)

    async def state(self, jti: str, sub: str, family: str | None) -> tuple[bool, int, bool]:
        """(jti denied, user's token version, family revoked) in one pipelined round trip."""
        deny, version_key, family_key = state_keys(jti, sub, family)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(deny)
            pipe.get(version_key)
            pipe.exists(family_key)
            denied, version, family_revoked = await pipe.execute()
        return bool(denied), int(version) if version is not None else 0, bool(family_revoked)

    async def revoke(self, jti: str, ttl_s: int) -> None:
        await self._redis.set(f"{PREFIX}:deny:{jti}", b"1", ex=max(1, ttl_s))

    async def user_token_version(self, sub: str) -> int:
        value = await self._redis.get(f"{PREFIX}:tv:{sub}")
        return int(value) if value is not None else 0

    async def bump_user_token_version(self, sub: str) -> int:
        return int(await self._redis.incr(f"{PREFIX}:tv:{sub}"))

    async def start_family(self, family: str, jti: str, ttl_s: int) -> None:
        await self._redis.set(f"{PREFIX}:fam:{family}", jti, ex=ttl_s)

    async def rotate_refresh(self, family: str, jti: str, next_jti: str, ttl_s: int) -> bool:
        result = await self._rotate(keys=[f"{PREFIX}:fam:{family}"], args=[jti, next_jti, ttl_s])
        return int(result) == 1

    async def revoke_family(self, family: str, ttl_s: int) -> None:
        await self._redis.set(f"{PREFIX}:famrev:{family}", b"1", ex=max(1, ttl_s))
