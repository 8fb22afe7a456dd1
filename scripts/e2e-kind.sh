#!/usr/bin/env bash
# End-to-end on a kind cluster: build and load the image, then run tests/e2e — the same tests
# the local one-node cluster runs (`make e2e`). `check` runs every step that needs no cluster
# (tools, chart lint and render, manifest validation, the image build context).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="${1:-run}"
CLUSTER="${KIND_CLUSTER:-aitrading-e2e}"
NAMESPACE="${NAMESPACE:-aitrading}"
IMAGE="${IMAGE:-aitrading:e2e}"
HELM="${HELM:-helm}"

step() { printf '\n== %s\n' "$*"; }

check() {
    step "tools"
    command -v "$HELM" >/dev/null || { echo "helm missing"; exit 1; }
    step "chart lint"
    "$HELM" lint charts/aitrading --set stack.enabled=true
    step "chart render + validation (Kubernetes 1.31, strict)"
    "$HELM" template aitrading charts/aitrading --namespace "$NAMESPACE" --kube-version 1.31.0 \
        --set stack.enabled=true --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" \
        > /tmp/aitrading-rendered.yaml
    ${PYTHON:-uv run --frozen python} - <<'PY'
import yaml, kubernetes_validate
from aitrading.operator.crd_model import TradingStackSpec
for doc in yaml.safe_load_all(open("/tmp/aitrading-rendered.yaml")):
    if not doc:
        continue
    if doc["kind"] == "TradingStack":
        TradingStackSpec.model_validate(doc["spec"])
    else:
        kubernetes_validate.validate(doc, "1.31", strict=True)
print("rendered manifests are valid")
PY
    step "image build context"
    test -f Dockerfile && test -f uv.lock && grep -q 'ENTRYPOINT \["aitrading"\]' Dockerfile
    echo "ok"
}

run() {
    # The e2e tier on kind: the same tests/e2e that run on the local one-node cluster
    # (scripts/local-cluster.sh), here against kind with the image built by docker and the
    # official database images instead of the local stand-ins.
    check
    step "kind cluster"
    kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s
    step "image"
    docker build -t "$IMAGE" .
    kind load docker-image "$IMAGE" --name "$CLUSTER"
    step "tests/e2e"
    KUBECONFIG="${KUBECONFIG:-$HOME/.kube/config}" \
    AITRADING_E2E_IMAGE="docker.io/library/$IMAGE" \
    AITRADING_E2E_POSTGRES_IMAGE="postgres:17.2" \
    AITRADING_E2E_DRAGONFLY_IMAGE="docker.dragonflydb.io/dragonflydb/dragonfly:v1.25.2" \
    AITRADING_E2E_WEAVIATE_IMAGE="semitechnologies/weaviate:1.35.2" \
        ${UV:-uv} run --frozen pytest tests/e2e -p no:cacheprovider --timeout 1200
}

case "$MODE" in
    check) check ;;
    run) run ;;
    *) echo "usage: $0 [check|run]"; exit 2 ;;
esac
