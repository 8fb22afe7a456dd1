"""Token verifications per second: signature + claims, and with the revocation round trip.

Baseline in the same run: raw Ed25519 signature verifications of the same signing input —
the cost floor any EdDSA JWT verifier pays. The main figure is a token's first verification
(more distinct tokens than the verified-token cache holds, so every one is a miss); beside
it, a token seen before (`core/security/verified_tokens.py`).
"""

from __future__ import annotations

import asyncio
import base64
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import embedded, report

from aitrading.core.security.jwt_manager import JWTManager, KeyRing, SigningKey
from aitrading.core.security.token_revocation import RedisRevocationStore
from aitrading.core.stores.redis_store import RedisStore

SECONDS = 2.0


def rate(fn: object) -> float:
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < SECONDS:
        for _ in range(100):
            fn()  # type: ignore[operator]
        count += 100
    return count / elapsed


async def main() -> None:
    with embedded(redis=True) as settings:
        store = RedisStore.create(settings)
        keys = KeyRing(SigningKey.generate())
        manager = JWTManager(keys, RedisRevocationStore(store.client), issuer="i", audience="a")
        token = (await manager.issue("bench-user", "pro", 1)).access_token
        header, payload, signature = token.split(".")
        raw_sig = base64.urlsafe_b64decode(signature + "==")
        public = keys.active.public_key
        signing_input = f"{header}.{payload}".encode()

        baseline = rate(lambda: public.verify(raw_sig, signing_input))
        distinct = [
            (await manager.issue(f"bench-{n}", "pro", 1)).access_token for n in range(12_000)
        ]
        turn = iter(range(10**9))
        decode_rate = rate(lambda: manager.decode(distinct[next(turn) % len(distinct)]))
        cached_rate = rate(lambda: manager.decode(token))

        count, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < SECONDS:
            await asyncio.gather(*(manager.verify(token) for _ in range(50)))
            count += 50
        full_rate = count / elapsed
        await store.close()
    report(
        "jwt_verify",
        "EdDSA access-token verifications/s (signature + claims, no revocation)",
        decode_rate,
        "verifications/s",
        baseline,
        "raw Ed25519 verifications/s",
        cached_per_s=round(cached_rate, 1),
        with_revocation_check_per_s=round(full_rate, 1),
    )


if __name__ == "__main__":
    asyncio.run(main())
