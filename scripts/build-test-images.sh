#!/usr/bin/env bash
# Images for the e2e tier, built on this machine because no container registry is reachable
# here. Everything lands in .cache/images (ignored by git) as docker-archive tarballs that the
# one-node cluster imports (scripts/local-cluster.sh); each is reused when present.
#
#   pause.tar            registry.k8s.io/pause:3.10       the pod sandbox (.cache/bin/pause)
#   python-slim.tar      docker.io/library/python:3.11-slim  stand-in: debootstrap + Debian's python3
#   uv.tar               ghcr.io/astral-sh/uv:$UV_VERSION  stand-in: /uv from the PyPI wheel
#   aitrading.tar        docker.io/library/aitrading:e2e    the project's Dockerfile, unchanged,
#                                                           built by buildah against the stand-ins
#   postgres.tar         localhost/aitrading-test/postgres:15    Debian's PostgreSQL behind the
#                                                           official image's interface (scripts/images)
#   dragonfly.tar        localhost/aitrading-test/dragonfly:redis7  Debian's redis-server behind the
#                                                           Dragonfly image's interface
#   weaviate.tar         localhost/aitrading-test/weaviate:1.35.2  weaviate-server (make store-bin)
#                                                           with the official image's defaults
#
# ClickHouse, Dragonfly and ArangoDB servers cannot be had here (no registry, no package):
# the stack runs ClickHouse embedded (chdb) in the e2e tier, and Dragonfly's protocol is
# served by redis-server.
#
# Root is needed (debootstrap, buildah). `FORCE_APP=1` rebuilds only the application image.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
IMG="$ROOT/.cache/images"
BIN="$ROOT/.cache/bin"
UV_VERSION="${UV_VERSION:-0.13.9}"
PYTHON_IMAGE="docker.io/library/python:3.11-slim"
UV_IMAGE="ghcr.io/astral-sh/uv:$UV_VERSION"
APP_IMAGE="${APP_IMAGE:-docker.io/library/aitrading:e2e}"
BUILDAH=(buildah --root "$ROOT/.cache/buildah/root" --runroot "$ROOT/.cache/buildah/run")
PY=python3
mkdir -p "$IMG"

# buildah leaves its storage's overlay mounts behind after a build; nothing of this script
# may outlive it on the machine.
release_buildah_mounts() {
    awk -v s="$ROOT/.cache/buildah/" 'index($5, s) == 1 {print $5}' /proc/self/mountinfo | sort -r \
        | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}
trap release_buildah_mounts EXIT

mirror() {  # the Debian mirror apt already uses here
    local uri
    uri=$(grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | awk '{print $2}' | grep -v security | head -1 || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

if [ ! -d "$IMG/base-rootfs" ]; then
    echo "== base root filesystem (debootstrap bookworm minbase + python3)"
    rm -rf "$IMG/base-rootfs.tmp"
    debootstrap --variant=minbase --include=python3,ca-certificates bookworm "$IMG/base-rootfs.tmp" "$(mirror)" \
        >"$IMG/debootstrap.log" 2>&1 || { tail -20 "$IMG/debootstrap.log"; exit 1; }
    # Package downloads inside image builds must trust the same CAs as this host.
    cp /usr/local/share/ca-certificates/*.crt "$IMG/base-rootfs.tmp/usr/local/share/ca-certificates/" 2>/dev/null || true
    chroot "$IMG/base-rootfs.tmp" update-ca-certificates >/dev/null
    ln -sf /usr/bin/python3 "$IMG/base-rootfs.tmp/usr/local/bin/python3"
    ln -sf /usr/bin/python3 "$IMG/base-rootfs.tmp/usr/local/bin/python"
    chroot "$IMG/base-rootfs.tmp" apt-get clean
    rm -rf "$IMG/base-rootfs.tmp/var/lib/apt/lists/"* "$IMG/base-rootfs.tmp/var/cache/apt/"*
    mv "$IMG/base-rootfs.tmp" "$IMG/base-rootfs"
fi

if [ ! -f "$IMG/python-slim.tar" ]; then
    echo "== $PYTHON_IMAGE (stand-in)"
    $PY "$ROOT/scripts/image_from_dir.py" "$IMG/base-rootfs" "$PYTHON_IMAGE" "$IMG/python-slim.tar" \
        --env LANG=C.UTF-8 --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt --cmd '["python3"]'
fi

if [ ! -f "$IMG/uv.tar" ]; then
    echo "== $UV_IMAGE (stand-in)"
    rm -rf "$IMG/uv-rootfs" "$IMG/uv-wheel"; mkdir -p "$IMG/uv-rootfs" "$IMG/uv-wheel"
    $PY -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_17_x86_64 \
        --python-version 3.11 -d "$IMG/uv-wheel" "uv==$UV_VERSION"
    $PY - "$IMG/uv-wheel" "$IMG/uv-rootfs/uv" <<'PY'
import sys, zipfile, pathlib
wheel = next(pathlib.Path(sys.argv[1]).glob("uv-*.whl"))
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/uv"))
    pathlib.Path(sys.argv[2]).write_bytes(z.read(name))
PY
    chmod 0755 "$IMG/uv-rootfs/uv"
    $PY "$ROOT/scripts/image_from_dir.py" "$IMG/uv-rootfs" "$UV_IMAGE" "$IMG/uv.tar" --entrypoint '["/uv"]'
fi

# A copy of the base root filesystem with Debian packages added (network through the host).
rootfs_with() {  # name packages...
    local name=$1; shift
    local dir="$IMG/$name-rootfs"
    [ -d "$dir" ] && return 0
    rm -rf "$dir.tmp"; cp -a "$IMG/base-rootfs" "$dir.tmp"
    cp /etc/resolv.conf "$dir.tmp/etc/resolv.conf"
    cp /etc/apt/sources.list.d/*.sources "$dir.tmp/etc/apt/sources.list.d/" 2>/dev/null || true
    chroot "$dir.tmp" env DEBIAN_FRONTEND=noninteractive sh -c \
        "apt-get update -qq && apt-get install -y -qq --no-install-recommends $* >/dev/null && apt-get clean"
    rm -rf "$dir.tmp/var/lib/apt/lists/"* "$dir.tmp/etc/resolv.conf"
    mv "$dir.tmp" "$dir"
}

if [ ! -f "$IMG/postgres.tar" ]; then
    echo "== localhost/aitrading-test/postgres:15 (Debian's PostgreSQL, official image interface)"
    rootfs_with postgres postgresql
    install -m 0755 "$ROOT/scripts/images/postgres-entrypoint.sh" "$IMG/postgres-rootfs/usr/local/bin/docker-entrypoint.sh"
    $PY "$ROOT/scripts/image_from_dir.py" "$IMG/postgres-rootfs" localhost/aitrading-test/postgres:15 \
        "$IMG/postgres.tar" --env PGDATA=/var/lib/postgresql/data --env LANG=C.UTF-8 \
        --entrypoint '["docker-entrypoint.sh"]'
fi

if [ ! -f "$IMG/dragonfly.tar" ]; then
    echo "== localhost/aitrading-test/dragonfly:redis7 (Debian's redis-server, Dragonfly interface)"
    rootfs_with redis redis-server
    install -m 0755 "$ROOT/scripts/images/dragonfly-entrypoint.sh" "$IMG/redis-rootfs/usr/local/bin/entrypoint.sh"
    mkdir -p "$IMG/redis-rootfs/data"
    $PY "$ROOT/scripts/image_from_dir.py" "$IMG/redis-rootfs" localhost/aitrading-test/dragonfly:redis7 \
        "$IMG/dragonfly.tar" --entrypoint '["entrypoint.sh"]'
fi

if [ ! -f "$IMG/weaviate.tar" ] && [ -x "$BIN/weaviate-server" ]; then
    echo "== localhost/aitrading-test/weaviate:1.35.2 (weaviate-server, official image defaults)"
    rm -rf "$IMG/weaviate-rootfs"; cp -a "$IMG/base-rootfs" "$IMG/weaviate-rootfs"
    install -m 0755 "$BIN/weaviate-server" "$IMG/weaviate-rootfs/bin/weaviate"
    mkdir -p "$IMG/weaviate-rootfs/var/lib/weaviate"
    $PY "$ROOT/scripts/image_from_dir.py" "$IMG/weaviate-rootfs" localhost/aitrading-test/weaviate:1.35.2 \
        "$IMG/weaviate.tar" --env PERSISTENCE_DATA_PATH=/var/lib/weaviate --env DEFAULT_VECTORIZER_MODULE=none \
        --env AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true --env CLUSTER_HOSTNAME=node1 \
        --env DISABLE_TELEMETRY=true --entrypoint '["/bin/weaviate"]' \
        --cmd '["--host", "0.0.0.0", "--port", "8080", "--scheme", "http"]'
fi

# The application image is rebuilt whenever the build context changed (a hash of every
# tracked file's content), so the e2e tier never tests a stale image; buildah's layer cache
# keeps a source-only rebuild short.
context_hash=$(cd "$ROOT" && { git ls-files -z | xargs -0 sha256sum 2>/dev/null || true; } | sha256sum | cut -c1-64)
if [ ! -f "$IMG/aitrading.tar" ] || [ "${FORCE_APP:-0}" = 1 ] \
    || [ "$(cat "$IMG/aitrading.context" 2>/dev/null)" != "$context_hash" ]; then
    echo "== $APP_IMAGE from the Dockerfile (buildah)"
    "${BUILDAH[@]}" pull --quiet "docker-archive:$IMG/python-slim.tar" >/dev/null
    "${BUILDAH[@]}" pull --quiet "docker-archive:$IMG/uv.tar" >/dev/null
    common=(--isolation chroot --network host --pull-never --layers
            --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" --build-arg "UV_IMAGE=$UV_IMAGE")
    # The dependency stage is tagged on its own, so a test can show it is reused after a
    # source-only change (tests/e2e/test_image.py).
    "${BUILDAH[@]}" bud "${common[@]}" --target deps -t localhost/aitrading-deps:e2e "$ROOT"
    "${BUILDAH[@]}" bud "${common[@]}" -t "$APP_IMAGE" "$ROOT"
    rm -f "$IMG/aitrading.tar"
    "${BUILDAH[@]}" push --quiet "$APP_IMAGE" "docker-archive:$IMG/aitrading.tar:$APP_IMAGE"
    echo "$context_hash" >"$IMG/aitrading.context"
fi
if [ ! -f "$IMG/pause.tar" ]; then
    echo "== pause"
    test -x "$BIN/pause" || { echo "no $BIN/pause: run scripts/build-k8s-test-bins.sh node"; exit 1; }
    rm -rf "$IMG/pause-rootfs"; mkdir -p "$IMG/pause-rootfs"; cp "$BIN/pause" "$IMG/pause-rootfs/pause"
    $PY "$ROOT/scripts/image_from_dir.py" "$IMG/pause-rootfs" registry.k8s.io/pause:3.10 "$IMG/pause.tar" \
        --entrypoint '["/pause"]'
fi

ls -la "$IMG"/*.tar
