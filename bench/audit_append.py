"""Audit appends per second into the embedded PostgreSQL (hash chain + advisory lock).

Baseline in the same run: single-row INSERTs per second into an equivalent table without
the chain, lock or triggers, through the same pool and concurrency.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import embedded, report, throughput

from aitrading.core.security.audit_logger import AuditLog
from aitrading.core.stores.postgres import PostgresStore
from aitrading.services.database_service.schema.postgres import migrate

SECONDS = 3.0
CONCURRENCY = 8


async def main() -> None:
    with embedded(postgres=True) as settings:
        await migrate(settings)  # the audit tables as a deployment has them
        store = await PostgresStore.create(settings)
        log = AuditLog(store.pool)
        await store.pool.execute(
            "CREATE TABLE plain_log (id bigserial PRIMARY KEY, ts timestamptz, actor text,"
            " action text, resource text, outcome text, payload jsonb)"
        )

        async def plain(i: int) -> object:
            return await store.pool.execute(
                "INSERT INTO plain_log (ts, actor, action, resource, outcome, payload)"
                " VALUES (now(), 'bench', 'login', $1, 'success', '{\"ip\": \"203.0.113.1\"}')",
                f"user/{i}",
            )

        async def chained(i: int) -> object:
            return await log.append("bench", "login", f"user/{i}", "success", {"ip": "203.0.113.1"})

        baseline = await throughput(plain, SECONDS, CONCURRENCY)
        value = await throughput(chained, SECONDS, CONCURRENCY)
        await store.close()
    report(
        "audit_append",
        f"hash-chained audit appends/s, {CONCURRENCY} concurrent writers",
        value,
        "appends/s",
        baseline,
        "plain INSERTs/s, same pool and concurrency",
    )


if __name__ == "__main__":
    asyncio.run(main())
