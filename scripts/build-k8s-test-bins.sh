#!/usr/bin/env bash
# Build etcd and kube-apiserver for the operator's tests, from the Go module proxy, into
# .cache/bin (ignored by git). Both modules carry `replace` directives for their own
# sub-modules, so `go install module@version` refuses them; instead the module source is
# downloaded, the replaces are pointed at the published versions of the same sub-modules,
# and the binary is built in that copy. Test infrastructure only: the product is Python.
set -euo pipefail
ETCD_VERSION="${ETCD_VERSION:-v3.6.5}"
K8S_VERSION="${K8S_VERSION:-v1.34.2}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/.cache/bin"
WORK="$ROOT/.cache/k8s-build"
mkdir -p "$BIN" "$WORK"
export GOFLAGS=-mod=mod GONOSUMDB="*" GOSUMDB=off GOTOOLCHAIN=local GOWORK=off

fetch() {  # module@version -> a writable copy of its source
    local dir
    dir=$(go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    rm -rf "$WORK/$2"; cp -r "$dir" "$WORK/$2"; chmod -R u+w "$WORK/$2"
}

if [ ! -x "$BIN/etcd" ]; then
    fetch "go.etcd.io/etcd/server/v3@$ETCD_VERSION" etcd  # the etcd main package
    cd "$WORK/etcd"
    for mod in $(go mod edit -json | python3 -c 'import json,sys; print(" ".join(r["Old"]["Path"] for r in json.load(sys.stdin).get("Replace") or []))'); do
        go mod edit -dropreplace="$mod"
        case "$mod" in */v3) go mod edit -require="$mod@$ETCD_VERSION" ;; esac
    done
    go build -o "$BIN/etcd" .
    test -x "$BIN/etcd"
fi

if [ ! -x "$BIN/kube-apiserver" ]; then
    fetch "k8s.io/kubernetes@$K8S_VERSION" kubernetes
    cd "$WORK/kubernetes"
    staging="v0.${K8S_VERSION#v1.}"
    for mod in $(go mod edit -json | python3 -c 'import json,sys; print(" ".join(r["Old"]["Path"] for r in json.load(sys.stdin).get("Replace") or [] if r["New"]["Path"].startswith("./staging")))'); do
        go mod edit -dropreplace="$mod" -require="$mod@$staging"
    done
    go build -o "$BIN/kube-apiserver" ./cmd/kube-apiserver
fi
ls -la "$BIN"
