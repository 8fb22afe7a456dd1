#!/usr/bin/env bash
# End-to-end on a kind cluster: build and load the image, install the chart with a
# TradingStack, wait until it is Ready, push simulated MT5 ticks through the gateway and read
# them back. `check` runs every step that needs no cluster (tools, chart lint and render,
# manifest validation, the image build context); CI on machines without Docker runs that.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="${1:-run}"
CLUSTER="${KIND_CLUSTER:-aitrading-e2e}"
NAMESPACE="${NAMESPACE:-aitrading}"
IMAGE="${IMAGE:-aitrading:e2e}"
HELM="${HELM:-helm}"
PASSWORD="${E2E_PASSWORD:-e2e-password-$(date +%s)}"

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
    check
    step "kind cluster"
    kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s
    step "image"
    docker build -t "$IMAGE" .
    kind load docker-image "$IMAGE" --name "$CLUSTER"
    step "install"
    kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
    openssl genpkey -algorithm ed25519 -out /tmp/aitrading-jwt.pem
    kubectl -n "$NAMESPACE" create secret generic aitrading-jwt \
        --from-file=key.pem=/tmp/aitrading-jwt.pem --dry-run=client -o yaml | kubectl apply -f -
    "$HELM" upgrade --install aitrading charts/aitrading --namespace "$NAMESPACE" --wait \
        --set stack.enabled=true --set image.repository="${IMAGE%:*}" \
        --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never
    step "wait for the TradingStack to be Ready"
    kubectl -n "$NAMESPACE" wait ts/aitrading --for=condition=Ready --timeout=600s
    kubectl -n "$NAMESPACE" get ts
    step "a user, a token, ticks through the gateway"
    echo "$PASSWORD" | kubectl -n "$NAMESPACE" exec -i deploy/aitrading-api-gateway -- \
        aitrading users create --email e2e@example.com --role admin --password-stdin
    kubectl -n "$NAMESPACE" port-forward svc/aitrading-api-gateway 8000:8000 &
    forward=$!
    trap 'kill $forward' EXIT
    sleep 3
    token=$(curl -fsS localhost:8000/auth/token -H 'content-type: application/json' \
        -d "{\"email\": \"e2e@example.com\", \"password\": \"$PASSWORD\"}" | \
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    uv run --frozen aitrading mt5-sim --url ws://localhost:8000/api/v1/ingest \
        --token "$token" --duration 10
    count=$(curl -fsS -H "authorization: Bearer $token" \
        "localhost:8000/api/v1/market/ticks?symbol=EURUSD&start=0&end=9999999999999&limit=10000" | \
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)["ticks"]))')
    echo "EURUSD ticks read back through the gateway: $count"
    test "$count" -gt 0
}

case "$MODE" in
    check) check ;;
    run) run ;;
    *) echo "usage: $0 [check|run]"; exit 2 ;;
esac
