"""The Helm chart: lint, schema refusals, and every rendered object valid for Kubernetes 1.31."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from aitrading.operator.crd_model import TradingStackSpec

ROOT = Path(__file__).parents[2]
CHART = ROOT / "charts" / "aitrading"
HELM = Path(os.environ.get("AITRADING_HELM", ROOT / ".cache" / "bin" / "helm"))
pytestmark = pytest.mark.skipif(
    not HELM.is_file(), reason=f"no helm at {HELM}: run `make helm-bin` to build it"
)


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, check=False, timeout=120
    )


def rendered_with_stack(*values: str) -> list[dict[str, Any]]:
    """The chart's objects with its TradingStack enabled, for Kubernetes 1.31."""
    result = helm(
        "template", "prod", str(CHART), "--kube-version", "1.31.0",
        "--set", "stack.enabled=true", *values,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [o for o in yaml.safe_load_all(result.stdout) if o]


def test_lint_passes() -> None:
    result = helm("lint", str(CHART), "--set", "stack.enabled=true")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("stack.spec.deletionPolicy=Shred", 'must be one of the following: "Retain", "Delete"'),
        ("image.pullPolicy=Sometimes", "image.pullPolicy"),
        ("serviceMonitor.interval=soon", "serviceMonitor.interval"),
        ("replicas=3", "Additional property replicas is not allowed"),
        ("stack.name=Bad_Name", "stack.name"),
        ("prometheusRule.spoolBacklogBytes=100", "prometheusRule.spoolBacklogBytes"),
        ("prometheusRule.threshold=1", "Additional property threshold is not allowed"),
        ("grafanaDashboard.namespace=Not_A_Namespace", "grafanaDashboard.namespace"),
    ],
)
def test_bad_values_are_refused_with_the_path(setting: str, message: str) -> None:
    result = helm("template", "x", str(CHART), "--kube-version", "1.31.0", "--set", setting)
    assert result.returncode != 0
    assert message in result.stderr


def test_rendered_objects_validate_and_the_stack_is_a_valid_spec() -> None:
    result = helm(
        "template",
        "prod",
        str(CHART),
        "--namespace",
        "trading",
        "--include-crds",
        "--kube-version",
        "1.31.0",
        "--set",
        "stack.enabled=true",
        "--set",
        "serviceMonitor.enabled=true",
    )
    assert result.returncode == 0, result.stderr
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    kinds = sorted({o["kind"] for o in objects})
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "Deployment",
        "Pod",  # the `helm test` hook
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
        "TradingStack",
    ]
    for obj in objects:
        if obj["kind"] in ("ServiceMonitor", "TradingStack", "CustomResourceDefinition"):
            continue  # custom resources: checked below / by the CRD tests
        kubernetes_validate.validate(obj, "1.31", strict=True)
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "aitrading"
    stack = next(o for o in objects if o["kind"] == "TradingStack")
    TradingStackSpec.model_validate(stack["spec"])
    crd = next(o for o in objects if o["kind"] == "CustomResourceDefinition")
    assert crd == yaml.safe_load((ROOT / "crds" / "tradingstack.yaml").read_text())
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.yaml")))
def test_examples_are_valid_stacks(example: Path) -> None:
    body = yaml.safe_load(example.read_text())
    assert body["kind"] == "TradingStack"
    TradingStackSpec.model_validate(body["spec"])


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.yaml")))
def test_chart_renders_each_example_as_its_stack(example: Path) -> None:
    import json

    spec = yaml.safe_load(example.read_text())["spec"]
    spec.pop("version", None)  # the chart sets the version from the image tag
    objects = rendered_with_stack("--set-json", f"stack.spec={json.dumps(spec)}")
    stack = next(o for o in objects if o["kind"] == "TradingStack")
    parsed = TradingStackSpec.model_validate(stack["spec"])
    from aitrading.operator.render import render

    for obj in render("prod", "trading", parsed):  # what the operator will create from it
        kubernetes_validate.validate(obj, "1.31", strict=True)


def test_production_values_pass_lint() -> None:
    result = helm("lint", str(CHART), "-f", str(CHART / "values-production.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_global_image_registry_reaches_the_operator_and_the_stack() -> None:
    objects = rendered_with_stack("--set", "global.imageRegistry=mirror.corp:5000")
    operator = next(o for o in objects if o["kind"] == "Deployment")
    image = operator["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith("mirror.corp:5000/aitrading/aitrading:")
    stack = next(o for o in objects if o["kind"] == "TradingStack")
    assert TradingStackSpec.model_validate(stack["spec"]).image_registry == "mirror.corp:5000"
    refused = helm("lint", str(CHART), "--set", "global.imageRegistry=not a registry")
    assert refused.returncode != 0
    assert "imageRegistry" in refused.stdout + refused.stderr


PROMTOOL = Path(os.environ.get("AITRADING_PROMTOOL", ROOT / ".cache" / "bin" / "promtool"))


def test_the_alert_rules_render_and_pass_promtool(tmp_path: Path) -> None:
    """The PrometheusRule renders with the labels Prometheus selects it by, and its rules pass
    `promtool check rules` (built from the Go module proxy: `make promtool-bin`). That every
    metric they read is exported is tests/integration/test_alert_metrics.py."""
    if not PROMTOOL.is_file():
        pytest.skip(f"no promtool at {PROMTOOL}: run `make promtool-bin` to build it")
    result = helm(
        "template", "prod", str(CHART), "--kube-version", "1.31.0",
        "--set", "prometheusRule.enabled=true",
        "--set", "prometheusRule.labels.release=kube-prometheus-stack",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rules = [o for o in yaml.safe_load_all(result.stdout) if o and o["kind"] == "PrometheusRule"]
    assert len(rules) == 1
    assert rules[0]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = {r["alert"] for g in rules[0]["spec"]["groups"] for r in g["rules"]}
    assert alerts == {
        "AitradingIngestStalled",
        "AitradingSpoolGrowing",
        "AitradingJournalFsyncSlow",
        "AitradingUpstreamCircuitOpen",
        "AitradingAuditVerifyFailed",
    }
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rules[0]["spec"]["groups"]}))
    checked = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(path)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout, checked.stdout
    # each alert fires on the series that mean trouble and stays quiet otherwise
    (tmp_path / "alert_rules_test.yaml").write_text(
        (Path(__file__).parent / "alert_rules_test.yaml").read_text()
    )
    tested = subprocess.run(
        [str(PROMTOOL), "test", "rules", "alert_rules_test.yaml"],
        capture_output=True, text=True, check=False, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout, tested.stdout


def test_no_alert_rules_unless_asked() -> None:
    assert not [o for o in rendered_with_stack() if o["kind"] == "PrometheusRule"]


README_GENERATOR = (
    ROOT / ".cache" / "readme-generator" / "node_modules" / ".bin" / "readme-generator"
)


def test_every_value_is_documented_and_the_chart_readme_is_current(tmp_path: Path) -> None:
    """Bitnami's readme-generator-for-helm checks that every value in values.yaml has a
    `## @param` comment, and the table it writes is the one committed (`make chart-readme`)."""
    if not README_GENERATOR.is_file():
        pytest.skip(f"no readme-generator at {README_GENERATOR}: run `make chart-readme-bin`")
    readme = tmp_path / "README.md"
    readme.write_text((CHART / "README.md").read_text())
    result = subprocess.run(
        [str(README_GENERATOR), "--values", str(CHART / "values.yaml"), "--readme", str(readme)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Metadata is correct" in result.stdout, result.stdout
    assert readme.read_text() == (CHART / "README.md").read_text(), "run `make chart-readme`"


DASHBOARD_CHECK = ROOT / ".cache" / "bin" / "dashboard-check"


def test_the_dashboard_renders_for_the_sidecar_and_passes_grafanas_schema(tmp_path: Path) -> None:
    """The ConfigMap carries the sidecar's label and the dashboard as committed, and the
    dashboard decodes strictly into Grafana's own dashboard type (its Go SDK) and validates
    (`make dashboard-check-bin`). Its metrics are checked in test_alert_metrics.py."""
    if not DASHBOARD_CHECK.is_file():
        pytest.skip(f"no dashboard-check at {DASHBOARD_CHECK}: run `make dashboard-check-bin`")
    result = helm(
        "template", "prod", str(CHART), "--kube-version", "1.31.0",
        "--set", "grafanaDashboard.enabled=true",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    maps = [o for o in yaml.safe_load_all(result.stdout) if o and o["kind"] == "ConfigMap"]
    boards = [m for m in maps if "aitrading.json" in m.get("data", {})]
    assert len(boards) == 1
    assert boards[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
    committed = (CHART / "files" / "dashboards" / "aitrading.json").read_text()
    assert json.loads(boards[0]["data"]["aitrading.json"]) == json.loads(committed)
    path = tmp_path / "aitrading.json"
    path.write_text(boards[0]["data"]["aitrading.json"])
    checked = subprocess.run(
        [str(DASHBOARD_CHECK), str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "valid" in checked.stdout


def test_helm_test_checks_the_stacks_gateway_with_the_stack_ca() -> None:
    """`helm test` reaches the gateway the operator makes (its Service name and port) and
    verifies it with the CA of the Secret the operator mounts in it."""
    from aitrading.operator.crd_model import TradingStackSpec
    from aitrading.operator.render import SERVICE_PORTS, tls_secret_for

    def test_pod(*values: str) -> dict[str, Any]:
        objects = rendered_with_stack("--namespace", "desk", "--set", "stack.name=fx", *values)
        (pod,) = [o for o in objects if o["kind"] == "Pod"]
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        return pod

    pod = test_pod()
    port = SERVICE_PORTS["api-gateway"]
    assert pod["spec"]["containers"][0]["command"][-1] == f"https://fx-api-gateway.desk.svc:{port}"
    default = TradingStackSpec.model_validate({"version": "1"})
    assert pod["spec"]["volumes"][0]["secret"]["secretName"] == tls_secret_for(
        "fx", default, "api-gateway"
    )
    own = test_pod("--set", "stack.spec.security.tlsSecret=mine")
    assert own["spec"]["volumes"][0]["secret"]["secretName"] == "mine"
    without_stack = helm("template", "x", str(CHART), "--kube-version", "1.31.0")
    assert "helm.sh/hook: test" not in without_stack.stdout
