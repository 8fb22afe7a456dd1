"""Call-chain outcomes per gateway replica and window, summed across replicas on read.

Each row is one replica's window for one chain: requests, errors and a latency histogram
with the shared bounds (`core.infrastructure.latency_histogram`). A replica retrying a
window it already wrote changes nothing (the key is chain, replica, window end). Rows older
than `RETENTION` are deleted as new ones arrive.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

from aitrading.core.infrastructure.latency_histogram import quantile_ms
from aitrading.services.database_service.models import ChainOutcomesIn, ChainSummary

if TYPE_CHECKING:
    import asyncpg

RETENTION = dt.timedelta(days=7)
UNHEALTHY_ERROR_RATE = 0.05

_INSERT = """
INSERT INTO chain_outcomes (chain_id, replica, window_end, requests, errors, latency_buckets)
SELECT o.chain_id, $1, $2, o.requests, o.errors, o.latency_buckets
FROM jsonb_to_recordset($3::jsonb)
    AS o(chain_id text, requests integer, errors integer, latency_buckets integer[])
ON CONFLICT (chain_id, replica, window_end) DO NOTHING
"""

_SUMMARY = """
WITH recent AS (
    SELECT * FROM chain_outcomes WHERE window_end >= $1
), buckets AS (
    SELECT chain_id, i, sum(n)::bigint AS n
    FROM recent, unnest(latency_buckets) WITH ORDINALITY AS u(n, i)
    GROUP BY chain_id, i
)
SELECT r.chain_id, d.name, d.entry_service, d.steps::text AS steps,
    sum(r.requests)::bigint AS requests, sum(r.errors)::bigint AS errors,
    count(DISTINCT r.replica) AS replicas,
    (SELECT array_agg(b.n ORDER BY b.i) FROM buckets b WHERE b.chain_id = r.chain_id) AS buckets
FROM recent r LEFT JOIN chain_definitions d ON d.id = r.chain_id
GROUP BY r.chain_id, d.name, d.entry_service, d.steps::text
ORDER BY coalesce(d.name, r.chain_id)
"""


class ChainOutcomeRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, body: ChainOutcomesIn) -> int:
        window_end = dt.datetime.fromtimestamp(body.window_end_ms / 1000, dt.UTC)
        rows = json.dumps([o.model_dump() for o in body.outcomes])
        async with self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute(_INSERT, body.replica, window_end, rows)
            await conn.execute(
                "DELETE FROM chain_outcomes WHERE window_end < now() - $1::interval", RETENTION
            )
        return int(status.split()[-1])

    async def summary(self, since: dt.datetime) -> list[ChainSummary]:
        """Every chain's windows that ended at or after `since`, summed over replicas."""
        found = []
        for row in await self._pool.fetch(_SUMMARY, since):
            requests, errors = int(row["requests"]), int(row["errors"])
            steps = json.loads(row["steps"]) if row["steps"] else []
            services = [row["entry_service"], *(s["service"] for s in steps)] if steps else []
            error_rate = errors / requests
            found.append(
                ChainSummary(
                    id=row["chain_id"],
                    name=row["name"] or row["chain_id"],
                    services=services,
                    requests=requests,
                    error_rate=round(error_rate, 4),
                    latency_p99_ms=quantile_ms(list(row["buckets"] or []), 0.99),
                    replicas=int(row["replicas"]),
                    status="unhealthy" if error_rate > UNHEALTHY_ERROR_RATE else "healthy",
                )
            )
        return found
