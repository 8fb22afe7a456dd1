"""The ServiceMonitors the operator renders: valid for the Prometheus Operator's own CRD, and
pointing at what the stack really serves (the Service, its port, its certificate)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from aitrading.operator.crd_model import SERVICES, TradingStackSpec
from aitrading.operator.monitoring import service_monitors
from aitrading.operator.render import render

ROOT = Path(__file__).parents[2]
SERVICE_MONITOR_CRD = (
    ROOT / ".cache/crds/monitoring.coreos.com/monitoring.coreos.com_servicemonitors.yaml"
)


def spec(**changes: object) -> TradingStackSpec:
    return TradingStackSpec.model_validate({"version": "1.2.3", **changes})


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """The CRD's schema with unknown fields refused, as `kubectl apply --validate=strict`
    would (the API server would otherwise prune them silently)."""
    schema = copy.deepcopy(schema)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
                node.setdefault("additionalProperties", False)
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


def test_each_monitor_validates_against_the_prometheus_operators_crd() -> None:
    """The CRD is generated from the Prometheus Operator's API types (`make monitoring-crds`)."""
    if not SERVICE_MONITOR_CRD.is_file():
        pytest.skip(f"no ServiceMonitor CRD at {SERVICE_MONITOR_CRD}: run `make monitoring-crds`")
    crd = yaml.safe_load(SERVICE_MONITOR_CRD.read_text())
    schema = _closed(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    for monitor in service_monitors("s", "ns", spec(monitoring={"labels": {"release": "kps"}})):
        body = {k: v for k, v in monitor.items() if k != "metadata"}  # metadata: the server's
        jsonschema.validate(body, schema)
    broken = service_monitors("s", "ns", spec())[0]
    broken["spec"]["endpoints"][0]["tlsConfg"] = {}
    with pytest.raises(jsonschema.ValidationError):  # the closed schema refuses a typo
        jsonschema.validate({k: v for k, v in broken.items() if k != "metadata"}, schema)


def test_each_monitor_selects_its_service_by_port_name_over_its_certificate() -> None:
    stack_spec = spec(monitoring={"labels": {"release": "kps"}, "interval": "15s"})
    objects = render("s", "ns", stack_spec)
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    workloads = {
        o["metadata"]["name"]: o for o in objects if o["kind"] in ("Deployment", "StatefulSet")
    }
    monitors = service_monitors("s", "ns", stack_spec)
    assert sorted(m["metadata"]["name"] for m in monitors) == sorted(f"s-{s}" for s in SERVICES)
    for monitor in monitors:
        name = monitor["metadata"]["name"]
        service, workload = services[name], workloads[name]
        assert monitor["metadata"]["labels"]["release"] == "kps"
        assert (
            monitor["spec"]["selector"]["matchLabels"].items()
            <= service["metadata"]["labels"].items()
        )
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ns"]}
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
        assert (endpoint["scheme"], endpoint["path"], endpoint["interval"]) == (
            "https",
            "/metrics",
            "15s",
        )
        mounted = [
            v["secret"]["secretName"]
            for v in workload["spec"]["template"]["spec"]["volumes"]
            if v["name"] == "tls"
        ]
        assert endpoint["tlsConfig"]["ca"]["secret"] == {"name": mounted[0], "key": "ca.crt"}
        assert endpoint["tlsConfig"]["serverName"] == f"{name}.ns.svc"


def test_the_scrapers_namespace_is_let_in_only_when_named() -> None:
    def scrape_policies(stack_spec: TradingStackSpec) -> list[dict[str, Any]]:
        return [
            o
            for o in render("s", "ns", stack_spec)
            if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "s-allow-metrics-scrape"
        ]

    assert scrape_policies(spec()) == []
    (policy,) = scrape_policies(spec(monitoring={"scraperNamespace": "monitoring"}))
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    (instance, component) = policy["spec"]["podSelector"]["matchExpressions"]
    assert instance["values"] == ["s"]
    assert sorted(component["values"]) == sorted(SERVICES)


def test_monitoring_settings_are_validated() -> None:
    from pydantic import ValidationError

    for bad in ({"interval": "soon"}, {"scraperNamespace": "Not_A_Namespace"}, {"extra": 1}):
        with pytest.raises(ValidationError):
            spec(monitoring=bad)
