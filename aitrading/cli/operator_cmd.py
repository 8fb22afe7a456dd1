"""`aitrading operator`: run the TradingStack operator (in the cluster, or with a kubeconfig)."""

from __future__ import annotations

import typer


def operator(
    standalone: bool = typer.Option(
        True,
        help="run as the single replica (Deployment with replicas 1, strategy Recreate); "
        "--no-standalone uses kopf peering, which needs the kopf.dev peering CRDs",
    ),
    liveness: str = typer.Option("http://0.0.0.0:8080/healthz", help="liveness endpoint"),
    metrics_port: int = typer.Option(9090, min=1, max=65535, help="Prometheus metrics port"),
) -> None:
    """Reconcile TradingStack resources into Deployments, StatefulSets and CronJobs."""
    from prometheus_client import start_http_server

    from aitrading.operator.run import run

    start_http_server(metrics_port)
    run(liveness=liveness, standalone=standalone)
