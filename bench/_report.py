"""`make bench-report`: the performance table and plot of docs/performance.md from the last
`make bench` (bench/results/latest.json).

The table between the `bench-table` markers of docs/performance.md is rewritten; the rest of
the page (profiles, explanations) is prose kept by hand. The plot, docs/performance.svg (text,
so no binary enters the repository), shows each path against its goal, ours and the peer
measured in the same run, as a share of the goal (1.0 = the goal; above it is better), so
throughput and latency rows read the same way.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"
PAGE = ROOT / "docs" / "performance.md"
PLOT = ROOT / "docs" / "performance.svg"
BEGIN, END = "<!-- bench-table:begin -->", "<!-- bench-table:end -->"

Results = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Row:
    path: str
    unit: str
    goal: float
    higher_is_better: bool
    ours: Callable[[Results], float | None]
    peer: Callable[[Results], float | None]
    peer_name: str


def field(bench: str, key: str) -> Callable[[Results], float | None]:
    def read(results: Results) -> float | None:
        value = results.get(bench, {}).get(key)
        return float(value) if isinstance(value, int | float) else None

    read.bench = bench  # type: ignore[attr-defined]  # whose run: its steal is shown
    return read


def largest(bench: str, key: str) -> Callable[[Results], float | None]:
    def read(results: Results) -> float | None:
        values = results.get(bench, {}).get(key)
        return max(values.values()) if isinstance(values, dict) and values else None

    read.bench = bench  # type: ignore[attr-defined]
    return read


ROWS = [
    Row("WebSocket ingest, 1,000-tick frames, acked", "ticks/s", 100_000, True,
        field("ws_ingest", "value"), field("tick_insert", "baseline"),
        "direct chdb insert of the same ticks"),
    Row("  … and stored in ClickHouse", "ticks/s", 100_000, True,
        field("ws_ingest", "batched_stored_ticks_per_s"), field("tick_insert", "baseline"),
        "direct chdb insert of the same ticks"),
    Row("single-tick frames, acked", "frames/s", 20_000, True,
        field("ws_ingest", "single_tick_frames_per_s"), field("ws_ingest", "baseline"),
        "heartbeat round trips on the same connection"),
    Row("tick → subscriber latency p99, loopback", "ms", 5, False,
        field("ws_ingest", "subscriber_latency_ms_p99"),
        field("ws_ingest", "heartbeat_round_trip_ms_p99"),
        "heartbeat round trip through the same bridge, paced between the ticks"),
    Row("connector: terminal tick → ack p99, 5 links", "ms", 5, False,
        field("connector", "value"), field("connector", "floor_p99_ms"),
        "minimal durable-ack pair (fsync, WebSocket, fsync)"),
    Row("latency the gateway adds, p50", "ms", 1.0, False,
        field("gateway_overhead", "added_p50_ms"), field("gateway_overhead", "nginx_added_p50_ms"),
        "nginx 1.22 reverse proxy, same upstream"),
    Row("latency the gateway adds, p99", "ms", 3.0, False,
        field("gateway_overhead", "added_p99_ms"), field("gateway_overhead", "nginx_added_p99_ms"),
        "nginx 1.22 reverse proxy, same upstream"),
    Row("database-service GET /ticks, empty range, p50", "ms", 1.0, False,
        field("gateway_overhead", "direct_p50_ms"), field("gateway_overhead", "engine_p50_ms"),
        "the same query through the service's repository, chdb in-process"),
    Row("pooled query vs connect-per-query (TLS 1.3 + SCRAM)", "x", 100, True,
        field("pooling", "ratio"), field("pooling", "pgbench_ratio"),
        "pgbench persistent vs -C, same server"),
    Row("log router, records/s, all sinks", "records/s", 100_000, True,
        field("log_router", "value"), field("log_router", "baseline"),
        "logging into a NullHandler"),
    Row("memory: largest service RSS idle", "MB", 80, False,
        largest("memory", "idle_rss_mb"), field("memory", "bare_idle_rss_mb"),
        "bare FastAPI/uvicorn app"),
    Row("memory: largest service RSS after load", "MB", 150, False,
        field("memory", "value"), field("memory", "baseline"), "bare FastAPI/uvicorn app"),
    Row("slowest service ready after its stores are up (restart)", "s", 1.0, False,
        field("service_startup", "value_exact_s"), field("service_startup", "baseline_exact_s"),
        "bare FastAPI/uvicorn app, spawn to its first 200"),
    Row("`make demo` healthy, first start", "s", 6, False,
        field("startup", "demo_first_start_healthy_s"), field("startup", "baseline"),
        "bare interpreter start"),
]  # fmt: skip


def share_of_goal(row: Row, value: float | None) -> float | None:
    """1.0 at the goal, above it better, for throughput and latency alike."""
    if value is None or value <= 0:
        return None
    return value / row.goal if row.higher_is_better else row.goal / value


def number(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def table(results: Results) -> str:
    lines = [
        "| path | now | goal | met | peer, same run | steal |",
        "|---|---|---|---|---|---|",
    ]
    for row in ROWS:
        ours, peer = row.ours(results), row.peer(results)
        share = share_of_goal(row, ours)
        met = "—" if share is None else ("yes" if share >= 1 else "no")
        sign = "≥" if row.higher_is_better else "≤"
        peer_text = "—" if peer is None else f"{number(peer)} {row.unit} ({row.peer_name})"
        steal = results.get(getattr(row.ours, "bench", ""), {}).get("cpu_steal_share")
        steal_text = f"{100 * steal:.0f} %" if isinstance(steal, int | float) else "—"
        lines.append(
            f"| {row.path.strip()} | {number(ours)} {row.unit} | {sign} {number(row.goal)} "
            f"{row.unit} | {met} | {peer_text} | {steal_text} |"
        )
    lines.append("")
    lines.append(
        "steal: the share of CPU time the hypervisor took during that benchmark's run (a shared"
        " machine; the same-run peers carry the same noise)."
    )
    return "\n".join(lines)


def plot(results: Results, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "aitrading"  # the same results give the same file

    rows = [r for r in ROWS if r.ours(results) is not None]
    ours = [share_of_goal(r, r.ours(results)) or 0.0 for r in rows]
    peers = [share_of_goal(r, r.peer(results)) or 0.0 for r in rows]
    figure, axes = plt.subplots(figsize=(10, 0.5 * len(rows) + 1.5))
    positions = range(len(rows))
    axes.barh([p + 0.2 for p in positions], ours, height=0.4, label="aitrading")
    axes.barh([p - 0.2 for p in positions], peers, height=0.4, label="peer, same run")
    axes.axvline(1.0, color="black", linewidth=1)
    axes.set_yticks(list(positions), [r.path.strip() for r in rows], fontsize=8)
    axes.set_xscale("log")
    axes.set_xlabel("share of the goal (1 = goal; right of the line is better)")
    axes.invert_yaxis()
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(target, format="svg", metadata={"Date": None})


def main() -> None:
    if not RESULTS.exists():
        raise SystemExit(f"{RESULTS} is missing: run `make bench` first")
    results = {entry["name"]: entry for entry in json.loads(RESULTS.read_text())}
    page = PAGE.read_text()
    if BEGIN not in page or END not in page:
        raise SystemExit(f"{PAGE} has no {BEGIN} … {END} markers")
    head, rest = page.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    PAGE.write_text(f"{head}{BEGIN}\n{table(results)}\n{END}{tail}")
    plot(results, PLOT)
    print(f"wrote {PAGE.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
