#!/usr/bin/env bash
# Build the Kubernetes test binaries from the Go module proxy into .cache/bin (ignored by git).
#
#   scripts/build-k8s-test-bins.sh            etcd + kube-apiserver (the operator's API-server tests)
#   scripts/build-k8s-test-bins.sh node       + kubelet, controller-manager, scheduler, kube-proxy,
#                                               kubectl, CoreDNS, local-path-provisioner, pause
#                                               (the one-node cluster of tests/e2e)
#
# etcd and kubernetes carry `replace` directives for their own sub-modules, so
# `go install module@version` refuses them; the module source is downloaded, the replaces are
# pointed at the published versions of the same sub-modules, and the binaries are built in that
# copy. Every binary is skipped when already present. Test infrastructure only: the product is
# Python.
set -euo pipefail
WHAT="${1:-apiserver}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.5}"
K8S_VERSION="${K8S_VERSION:-v1.34.2}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.15.0}"
LOCAL_PATH_VERSION="${LOCAL_PATH_VERSION:-v0.0.30}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/.cache/bin"
WORK="$ROOT/.cache/k8s-build"
mkdir -p "$BIN" "$WORK"
export GOFLAGS=-mod=mod GONOSUMDB="*" GOSUMDB=off GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0

fetch() {  # module@version -> a writable copy of its source
    local dir
    dir=$(go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    rm -rf "${WORK:?}/$2"; cp -r "$dir" "$WORK/$2"; chmod -R u+w "$WORK/$2"
}

if [ ! -x "$BIN/etcd" ]; then
    fetch "go.etcd.io/etcd/server/v3@$ETCD_VERSION" etcd  # the etcd main package
    (
        cd "$WORK/etcd"
        for mod in $(go mod edit -json | python3 -c 'import json,sys; print(" ".join(r["Old"]["Path"] for r in json.load(sys.stdin).get("Replace") or []))'); do
            go mod edit -dropreplace="$mod"
            case "$mod" in */v3) go mod edit -require="$mod@$ETCD_VERSION" ;; esac
        done
        go build -o "$BIN/etcd" .
    )
fi

# Kubernetes binaries: stamped with their version, or the API server reports v0.0.0-master and
# Helm refuses a chart whose kubeVersion is >=1.31.
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
-X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
wanted=(kube-apiserver)
[ "$WHAT" = node ] && wanted+=(kubelet kube-controller-manager kube-scheduler kube-proxy kubectl)
missing=()
for b in "${wanted[@]}"; do [ -x "$BIN/$b" ] || missing+=("./cmd/$b"); done
if [ "${#missing[@]}" -gt 0 ]; then
    [ -f "$WORK/kubernetes/.prepared-$K8S_VERSION" ] || {
        fetch "k8s.io/kubernetes@$K8S_VERSION" kubernetes
        (
            cd "$WORK/kubernetes"
            staging="v0.${K8S_VERSION#v1.}"
            for mod in $(go mod edit -json | python3 -c 'import json,sys; print(" ".join(r["Old"]["Path"] for r in json.load(sys.stdin).get("Replace") or [] if r["New"]["Path"].startswith("./staging")))'); do
                go mod edit -dropreplace="$mod" -require="$mod@$staging"
            done
            touch ".prepared-$K8S_VERSION"
        )
    }
    (cd "$WORK/kubernetes" && go build -ldflags "$LDFLAGS" -o "$BIN/" "${missing[@]}")
fi

if [ "$WHAT" = node ]; then
    [ -x "$BIN/coredns" ] || GOBIN="$BIN" go install "github.com/coredns/coredns@$COREDNS_VERSION"
    [ -x "$BIN/local-path-provisioner" ] \
        || GOBIN="$BIN" go install "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION"
    if [ ! -x "$BIN/pause" ]; then
        # The sandbox ("pause") container: sleeps until SIGTERM and reaps children. A static Go
        # program of a few lines, built here because no registry serves registry.k8s.io/pause.
        src="$WORK/pause"; mkdir -p "$src"
        cat >"$src/main.go" <<'GO'
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s == syscall.SIGCHLD {
			for {
				var ws syscall.WaitStatus
				if pid, _ := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
GO
        (cd "$src" && { [ -f go.mod ] || go mod init pause >/dev/null 2>&1; } && go build -ldflags "-s -w" -o "$BIN/pause" .)
    fi
fi
ls -la "$BIN"
