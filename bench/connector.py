"""Connector latency: a tick entering the terminal → data-bridge's ack, over loopback.

database-service and data-bridge run as their own processes on the embedded stores; the
connector (simulated terminal, durable outbox, N links) runs here. Ticks enter the terminal at
a steady rate; each tick's latency is from entering the terminal to the ack of the frame that
carried it (capture polling, the outbox's commit, the WebSocket, the bridge's durable store).
Five links (the seed's number) and one link in the same run; the seed's goal is p99 < 50 ms.
Beside it, measured in the same run: the floor (`_durable_ack_floor.py`, a minimal durable ack
over loopback, run after the stack has stopped, on a quiet disk) and the share of CPU time the
hypervisor took meanwhile (steal).
`to_links_p50_ms` is the connector's own part (capture polling, numbering, the page written to
the outbox): a page is handed to the links before its outbox commit; the rest is the link and
the bridge's durable store. Every ack waits for an fsync of data-bridge's journal, on a disk
that ClickHouse, PostgreSQL and Redis write to as well: `bridge_journal_fsync*` is the bridge's
own histogram of them (`aitrading_data_bridge_journal_fsync_seconds`) over the 5-link run, and
`ticks_over_5ms` how many ticks that run had above our goal.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _durable_ack_floor import floor_latencies
from _harness import cpu_steal_share, embedded, free_port, report, service_env, serving

RATE = 200  # ticks per second
SECONDS = 8.0
CAPTURE_INTERVAL_S = 0.002  # connector.json's capture_interval_ms = 2 (the default is 10)


async def measure(url: str, token: str, links: int) -> list[float]:
    from aitrading.client.metatrader_connector.connector import Connector, ConnectorOptions
    from aitrading.client.metatrader_connector.outbox import Outbox
    from aitrading.client.metatrader_connector.simulator_terminal import SimulatorTerminal
    from aitrading.client.metatrader_connector.terminal import TerminalTick

    entered: dict[tuple[str, int, float], float] = {}
    frame_ticks: dict[int, list[tuple[str, int, float]]] = {}
    latencies: list[float] = []
    to_links: list[float] = []  # entered the terminal → handed to the links

    class Timed(Connector):
        """Times each page when it is handed to the links (its outbox commit runs after)."""

        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self._page: list[tuple[str, int, float]] = []
            offer = self._queue.offer

            def timed_offer(frame_id: int, body: bytes, ticks: int) -> None:
                if self._page:
                    frame_ticks[frame_id], self._page = self._page, []
                    now = time.perf_counter()
                    to_links.extend((now - entered[k]) * 1000 for k in frame_ticks[frame_id])
                offer(frame_id, body, ticks)

            self._queue.offer = timed_offer  # type: ignore[method-assign]

        def _put_ticks(self, symbol: str, ticks: list[Any], *rest: Any) -> int:
            self._page = [(t.symbol, t.time_msc, t.bid) for t in ticks]
            return super()._put_ticks(symbol, ticks, *rest)

        def _acked(self, link: Any, seq: int) -> None:
            frame_id = link.in_flight.get(seq)
            super()._acked(link, seq)
            now = time.perf_counter()
            for key in frame_ticks.pop(frame_id, []) if frame_id is not None else []:
                latencies.append((now - entered.pop(key)) * 1000)

    async def token_of() -> str:
        return token

    terminal = SimulatorTerminal()
    with tempfile.TemporaryDirectory() as folder:
        connector = Timed(
            ConnectorOptions(
                url=url,
                source=f"bench{links}",
                connections=links,
                symbols=("EURUSD",),
                capture_interval_s=CAPTURE_INTERVAL_S,
                account_every_s=3600,
            ),
            terminal,
            Outbox(Path(folder) / "outbox.db"),
            token_of,
        )
        await connector.start()
        try:
            deadline = time.monotonic() + 60
            while not all(link.state.value == "connected" for link in connector.links):
                assert time.monotonic() < deadline, connector.status()
                await asyncio.sleep(0.05)
            interval = 1 / RATE
            started = time.perf_counter()
            count = 0
            while time.perf_counter() - started < SECONDS:
                now_ms = int(time.time() * 1000)
                bid = round(1.0 + count * 1e-5, 5)
                key = ("EURUSD", now_ms, bid)
                entered[key] = time.perf_counter()
                terminal.record([TerminalTick("EURUSD", now_ms, bid, bid + 0.0002, 0.0, 0, 0.0, 6)])
                count += 1
                await asyncio.sleep(max(0.0, started + count * interval - time.perf_counter()))
            deadline = time.monotonic() + 30
            while entered:
                assert time.monotonic() < deadline, f"{len(entered)} ticks never acked"
                await asyncio.sleep(0.05)
        finally:
            await connector.stop()
    measure.to_links_p50 = statistics.median(to_links)  # type: ignore[attr-defined]
    measure.to_links_p99 = statistics.quantiles(to_links, n=100)[98]  # type: ignore[attr-defined]
    return latencies


FSYNC_HISTOGRAM = "aitrading_data_bridge_journal_fsync_seconds"


async def journal_fsync_buckets(bridge_url: str) -> dict[float, float]:
    """data-bridge's journal fsync histogram, cumulative count per upper bound (s)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(base_url=bridge_url) as http:
        text = (await http.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        if family.name == FSYNC_HISTOGRAM:
            return {
                float(sample.labels["le"]): sample.value
                for sample in family.samples
                if sample.name.endswith("_bucket")
            }
    raise SystemExit(f"data-bridge exports no {FSYNC_HISTOGRAM}")


def bucket_delta(before: dict[float, float], after: dict[float, float]) -> dict[float, float]:
    return {bound: after[bound] - before.get(bound, 0.0) for bound in after}


def fsync_summary(buckets: dict[float, float]) -> dict[str, Any]:
    """The journal's fsyncs during the 5-link run: how many, how many slower than 4 ms, and
    the bucket bound under which 99 % of them fell (every ack waits for one)."""
    total = buckets[float("inf")]
    p99_bound = next(
        (bound for bound in sorted(buckets) if total and buckets[bound] >= 0.99 * total),
        float("inf"),
    )
    return {
        "bridge_journal_fsyncs": int(total),
        "bridge_journal_fsyncs_over_4ms": int(total - buckets[0.004]),
        "bridge_journal_fsync_p99_under_ms": p99_bound * 1000,
    }


async def main() -> None:
    from aitrading.cli.mt5_sim_cmd import development_token
    from aitrading.core.infrastructure.config_manager import load_settings

    with embedded(postgres=True, redis=True) as settings:
        ports = {"database-service": free_port(), "data-bridge": free_port()}
        env = service_env(settings, ports)
        config = load_settings(
            environ={k: v for k, v in env.items() if k.startswith("AITRADING_")}
        ).settings
        async with serving(env, ports):
            token = await development_token(config, "bench-connector")
            url = f"ws://127.0.0.1:{ports['data-bridge']}/api/v1/ingest"
            bridge = f"http://127.0.0.1:{ports['data-bridge']}"
            steal_before = cpu_steal_share()
            fsyncs_before = await journal_fsync_buckets(bridge)
            five = await measure(url, token, 5)
            fsyncs = bucket_delta(fsyncs_before, await journal_fsync_buckets(bridge))
            one = await measure(url, token, 1)
            steal_after = cpu_steal_share()
    # the floor runs after the stack has stopped: only its own two processes compete
    floor = await floor_latencies(RATE, SECONDS, free_port())
    steal = (steal_after[0] - steal_before[0]) / max(1, steal_after[1] - steal_before[1])

    def p99(samples: list[float]) -> float:
        return statistics.quantiles(samples, n=100)[98]

    report(
        "connector",
        "terminal tick → data-bridge ack, p99, 5 links",
        p99(five),
        "ms",
        p99(one),
        "p99 with 1 link",
        p50_ms=round(statistics.median(five), 2),
        one_link_p50_ms=round(statistics.median(one), 2),
        ticks=len(five),
        to_links_p50_ms=round(measure.to_links_p50, 2),  # type: ignore[attr-defined]
        to_links_p99_ms=round(measure.to_links_p99, 2),  # type: ignore[attr-defined]
        rate_per_s=RATE,
        capture_interval_ms=CAPTURE_INTERVAL_S * 1000,
        floor_p50_ms=round(statistics.median(floor), 2),
        floor_p99_ms=round(p99(floor), 2),
        floor_metric="minimal client+server pair: fsync, WebSocket, fsync, ack",
        cpu_steal_share=round(steal, 3),
        ticks_over_5ms=sum(1 for latency in five if latency > 5),
        **fsync_summary(fsyncs),
        goal_p99_ms=50,
        our_goal_p99_ms=5,
    )


if __name__ == "__main__":
    asyncio.run(main())
