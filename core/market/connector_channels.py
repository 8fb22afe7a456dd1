"""How the trading-engine and data-bridge meet a connector, through the Redis-protocol store.

- **Instructions**: one stream per connector source. The engine appends a signed instruction
  (and publishes the source's name on one notification channel) and removes it once the
  connector has answered (or it expired); every data-bridge connection of that source reads
  the stream from the start, so an instruction survives a disconnect, a bridge restart and an
  engine restart, and is delivered again until it is answered. A connector therefore may see
  an instruction more than once and executes each order id once. Reads never block a pooled
  connection: each bridge holds one subscription and wakes the connections of the source
  named (with a slow poll as the safety net for a lost notification).
- **Presence**: each open connector connection keeps a member with an expiry in a sorted set
  per source; the engine asks whether any is alive (`when_no_connector: refuse`).
- **Accounts**: the latest `account_info` per source, for the free-margin check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import msgspec
import redis.asyncio as aioredis

INSTRUCTIONS = "aitrading:instructions:"  # + source
NOTIFY = "aitrading:instructions"  # pub/sub: the source that has a new instruction
PRESENCE = "aitrading:connectors:"  # + source
ACCOUNTS = "aitrading:accounts:latest"  # hash: source -> account_info JSON
STREAM_MAXLEN = 10_000
PRESENCE_TTL_S = 30.0


@dataclass(frozen=True)
class QueuedInstruction:
    entry: str
    order_id: str
    kind: str
    token: str
    expires_at: float


class InstructionQueue:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def append(
        self, source: str, order_id: str, kind: str, token: str, expires_at: float
    ) -> str:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(
                INSTRUCTIONS + source,
                {"order_id": order_id, "kind": kind, "token": token, "exp": str(expires_at)},
                maxlen=STREAM_MAXLEN,
                approximate=True,
            )
            pipe.publish(NOTIFY, source)
            entry, _ = await pipe.execute()
        return _text(entry)

    async def remove(self, source: str, entry: str) -> None:
        await self._redis.xdel(INSTRUCTIONS + source, entry)

    async def contains(self, source: str, entry: str) -> bool:
        return bool(await self._redis.xrange(INSTRUCTIONS + source, entry, entry, count=1))

    async def read(self, source: str, after: str, count: int = 100) -> list[QueuedInstruction]:
        """Instructions after `after` ("0": all); never blocks."""
        answer = await self._redis.xread({INSTRUCTIONS + source: after}, count=count)
        out = []
        streams: list[Any] = list(answer or [])
        for _, entries in streams:
            for entry_id, fields in entries:
                values = {_text(k): _text(v) for k, v in fields.items()}
                out.append(
                    QueuedInstruction(
                        _text(entry_id),
                        values["order_id"],
                        values["kind"],
                        values["token"],
                        float(values["exp"]),
                    )
                )
        return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Presence:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def mark(self, source: str, session: str) -> None:
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(PRESENCE + source, {session: now + PRESENCE_TTL_S})
            pipe.zremrangebyscore(PRESENCE + source, "-inf", now)
            pipe.expire(PRESENCE + source, int(PRESENCE_TTL_S * 2))
            await pipe.execute()

    async def unmark(self, source: str, session: str) -> None:
        await self._redis.zrem(PRESENCE + source, session)

    async def online(self, source: str) -> bool:
        return int(await self._redis.zcount(PRESENCE + source, time.time(), "+inf")) > 0


class LatestAccounts:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def put(self, source: str, account: dict[str, Any]) -> None:
        await self._redis.hset(ACCOUNTS, source, msgspec.json.encode(account))

    async def get(self, source: str) -> dict[str, Any] | None:
        raw = await self._redis.hget(ACCOUNTS, source)
        if raw is None:
            return None
        value: dict[str, Any] = msgspec.json.decode(raw)
        return value
