# The two commands of the README are `make demo` and `make test`. Each bootstraps what it
# needs on a fresh machine that has only Python 3.11 and the package registries: uv (from
# PyPI) if missing, then the locked environment (uv.lock) with every extra.

SHELL := /bin/bash
# uv on PATH, else where `pip install --user` puts it (often not on PATH), else as a module of
# python3 — not only the module: inside an activated .venv (or `uv run`), python3 is the
# venv's, which has no uv (make demo failed so under `make test`).
UV := $(shell command -v uv 2>/dev/null || ls "$(HOME)/.local/bin/uv" 2>/dev/null || echo "python3 -m uv")
SYNC_STAMP := .venv/.synced

.PHONY: compose-schema demo test e2e lint bench bench-report stores-up stores-down bootstrap clean store-bin crd cluster-bin cluster-bin-node helm-bin promtool-bin dashboard-check-bin monitoring-crds chart-readme-bin chart-readme image cluster-up cluster-down

# Test infrastructure built from the Go module proxy into an ignored cache (never committed).
WEAVIATE_VERSION := v1.35.2
STORE_BIN := $(CURDIR)/.cache/bin

# Bytecode is compiled at install: a first start that compiles pandas, FastAPI and ours as it
# imports them (or every start, where PYTHONDONTWRITEBYTECODE is set) took `make demo` from
# 5.0 to 7.5 s before it was healthy.
$(SYNC_STAMP): pyproject.toml uv.lock Makefile
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --user --quiet uv || \
		python3 -m pip install --user --quiet --break-system-packages uv
	$(UV) sync --frozen --all-extras --compile-bytecode
	.venv/bin/python -m compileall -q aitrading
	@touch $(SYNC_STAMP)

bootstrap: $(SYNC_STAMP)

demo: $(SYNC_STAMP)  ## start the embedded stores and the hub; live health until Ctrl-C
	$(UV) run --frozen aitrading demo

test: $(SYNC_STAMP)  ## the whole test suite (unit + integration against real embedded servers)
	$(UV) run --frozen pytest

e2e: $(SYNC_STAMP)  ## tests/e2e on KUBECONFIG's cluster, or on the local one-node cluster (root)
	$(UV) run --frozen pytest tests/e2e -p no:cacheprovider --timeout 1200  # pods pull and unpack a 500 MB image: slow under load

lint: $(SYNC_STAMP)
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy -p aitrading.core -p aitrading.cli -p aitrading.services -p aitrading.client -p aitrading.operator

bench: $(SYNC_STAMP)  ## every benchmark under bench/, results in bench/results/latest.json
	@mkdir -p bench/results
	@set -e; echo "[" > bench/results/latest.json; first=1; \
	for b in bench/[!_]*.py; do \
		out=$$($(UV) run --frozen python $$b); echo "$$out"; \
		[ $$first = 1 ] || echo "," >> bench/results/latest.json; first=0; \
		echo "$$out" >> bench/results/latest.json; \
	done; echo "]" >> bench/results/latest.json

bench-report: $(SYNC_STAMP)  ## docs/performance.md's table and docs/performance.svg from the last `make bench`
	$(UV) run --frozen python bench/_report.py

store-bin: $(STORE_BIN)/weaviate-server  ## build weaviate-server for the integration tests

$(STORE_BIN)/weaviate-server:
	@mkdir -p $(STORE_BIN)
	GOBIN=$(STORE_BIN) GOFLAGS=-mod=mod go install github.com/weaviate/weaviate/cmd/weaviate-server@$(WEAVIATE_VERSION)

crd: $(SYNC_STAMP)  ## regenerate crds/tradingstack.yaml from the operator's pydantic model
	$(UV) run --frozen python -m aitrading.operator.generate_crd

cluster-bin:  ## build etcd and kube-apiserver for the operator tests (into .cache/bin)
	bash scripts/build-k8s-test-bins.sh

cluster-bin-node:  ## + kubelet, controller-manager, scheduler, kube-proxy, kubectl, CoreDNS, local-path
	bash scripts/build-k8s-test-bins.sh node

image: cluster-bin-node  ## the image from the Dockerfile (buildah) + pause and base stand-ins, in .cache/images
	bash scripts/build-test-images.sh

cluster-up: cluster-bin-node image  ## a real one-node Kubernetes v1.34 (root); kubeconfig: .cache/cluster/kubeconfig
	bash scripts/local-cluster.sh up

cluster-down:  ## stop it; nothing left behind (processes, mounts, namespaces, cgroups, sysctls)
	bash scripts/local-cluster.sh down

HELM_VERSION := v3.16.4
helm-bin: $(STORE_BIN)/helm  ## build helm and actionlint for the delivery tests (into .cache/bin)

$(STORE_BIN)/helm:
	@mkdir -p $(STORE_BIN)
	GOBIN=$(STORE_BIN) GOFLAGS=-mod=mod go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	GOBIN=$(STORE_BIN) GOFLAGS=-mod=mod go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.7

PROMETHEUS_VERSION := v0.316.0
promtool-bin: $(STORE_BIN)/promtool  ## build promtool (Prometheus' rule checker) for the chart's alert rules

$(STORE_BIN)/promtool:
	@mkdir -p $(STORE_BIN)
	GOBIN=$(STORE_BIN) GOFLAGS=-mod=mod go install github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION)

dashboard-check-bin: $(STORE_BIN)/dashboard-check  ## the chart dashboard's schema check (Grafana's Go SDK) into .cache/bin
$(STORE_BIN)/dashboard-check: scripts/dashboard-check/main.go scripts/dashboard-check/go.mod
	@mkdir -p $(STORE_BIN)
	cd scripts/dashboard-check && GOFLAGS=-mod=mod go build -o $(abspath $(STORE_BIN))/dashboard-check .

MONITORING_CRDS := $(CURDIR)/.cache/crds/monitoring.coreos.com
monitoring-crds: $(MONITORING_CRDS)/monitoring.coreos.com_servicemonitors.yaml  ## the Prometheus Operator's CRDs (controller-gen over its API types) into .cache/crds, for the e2e tier
$(MONITORING_CRDS)/monitoring.coreos.com_servicemonitors.yaml: scripts/monitoring-crds/go.mod scripts/monitoring-crds/go.sum
	@mkdir -p $(MONITORING_CRDS)
	cd scripts/monitoring-crds && GOFLAGS=-mod=mod go tool controller-gen crd:crdVersions=v1,maxDescLen=0 paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 output:crd:dir=$(MONITORING_CRDS)

README_GENERATOR := .cache/readme-generator/node_modules/.bin/readme-generator
chart-readme-bin: $(README_GENERATOR)  ## Bitnami's readme-generator-for-helm (npm) into .cache
$(README_GENERATOR):
	npm install --silent --no-audit --no-fund --prefix .cache/readme-generator @bitnami/readme-generator-for-helm@2.7.2

chart-readme: $(README_GENERATOR)  ## the chart README's parameter table from the `## @param` comments in values.yaml
	$(README_GENERATOR) --values charts/aitrading/values.yaml --readme charts/aitrading/README.md

COMPOSE_GO_VERSION := v2.17.0
compose-schema: .cache/compose-spec.json  ## the compose specification's JSON schema (from the Go module proxy) for the compose test

.cache/compose-spec.json:
	@mkdir -p .cache
	GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json github.com/compose-spec/compose-go/v2@$(COMPOSE_GO_VERSION) > .cache/compose-go.json || true
	python3 -c "import json, zipfile; z = zipfile.ZipFile(json.load(open('.cache/compose-go.json'))['Zip']); open('$@', 'wb').write(z.read('github.com/compose-spec/compose-go/v2@$(COMPOSE_GO_VERSION)/schema/compose-spec.json'))"

stores-up: $(SYNC_STAMP)
	$(UV) run --frozen aitrading stores up

stores-down: $(SYNC_STAMP)
	$(UV) run --frozen aitrading stores down

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache bench/results
