"""`aitrading operator`: run the TradingStack operator (in the cluster, or with a kubeconfig)."""

from __future__ import annotations

import ssl
from pathlib import Path

import typer


def operator(
    standalone: bool = typer.Option(
        True,
        help="run as the single replica (Deployment with replicas 1, strategy Recreate); "
        "--no-standalone uses kopf peering, which needs the kopf.dev peering CRDs",
    ),
    liveness: str = typer.Option("http://0.0.0.0:8080/healthz", help="liveness endpoint"),
    metrics_port: int = typer.Option(9090, min=1, max=65535, help="Prometheus metrics port"),
    metrics_cert_file: Path | None = typer.Option(  # noqa: B008
        None, help="serve metrics over TLS 1.3 with this certificate (PEM)"
    ),
    metrics_key_file: Path | None = typer.Option(None, help="its private key (PEM)"),  # noqa: B008
) -> None:
    """Reconcile TradingStack resources into Deployments, StatefulSets and CronJobs."""
    from aitrading.operator.run import run

    if (metrics_cert_file is None) != (metrics_key_file is None):
        raise typer.BadParameter("give both --metrics-cert-file and --metrics-key-file, or neither")
    serve_metrics(metrics_port, metrics_cert_file, metrics_key_file)
    run(liveness=liveness, standalone=standalone)


def serve_metrics(port: int, cert_file: Path | None, key_file: Path | None) -> object:
    """The Prometheus endpoint, HTTPS with TLS 1.3 and nothing older when a certificate is
    given (the chart passes one from `operator.metricsTlsSecret`). Returns the server."""
    from prometheus_client import start_http_server

    if cert_file is None or key_file is None:
        server, _ = start_http_server(port)
        return server
    server, _ = start_http_server(
        port,
        certfile=str(cert_file),
        keyfile=str(key_file),
        tls_min_version=ssl.TLSVersion.TLSv1_3,
    )
    return server
