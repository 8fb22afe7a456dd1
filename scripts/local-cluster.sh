#!/usr/bin/env bash
# A real one-node Kubernetes for the e2e tier, on this machine, as root, without Docker or a
# registry (the facts it rests on: ../shared/k8s-node-recipe.md).
#
#   scripts/local-cluster.sh up       etcd, kube-apiserver (RBAC), controller-manager, scheduler,
#                                     containerd + kubelet, kube-proxy, CoreDNS, local-path storage;
#                                     prints the kubeconfig path
#   scripts/local-cluster.sh down     stops every daemon by PID, removes pods' processes, mounts,
#                                     network namespaces and cgroups, restores the sysctls kubelet
#                                     changes; safe to run at any time, also after a failed `up`
#   scripts/local-cluster.sh status   what is running
#
# Everything runs inside the network namespace $NETNS (node address 10.200.0.1, reachable from
# the host through a veth pair as the only route), so the host's ports and iptables stay
# untouched. State lives in $STATE (.cache/cluster); binaries come from .cache/bin
# (scripts/build-k8s-test-bins.sh node) and images from .cache/images
# (scripts/build-test-images.sh). The kubeconfig is $STATE/kubeconfig.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${AITRADING_CLUSTER_BIN:-$ROOT/.cache/bin}"
IMG="$ROOT/.cache/images"
STATE="${AITRADING_CLUSTER_DIR:-$ROOT/.cache/cluster}"
NETNS="${AITRADING_CLUSTER_NETNS:-aitrading-e2e}"
NODE_IP=10.200.0.1
HOST_IP=10.200.0.2
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/12
API_SERVICE_IP=10.96.0.1
DNS_IP=10.96.0.10
NODE_NAME=aitrading-node
K8S_VERSION="${K8S_VERSION:-v1.34.2}"
# The sysctls kubelet sets on the host (it checks them at start): saved before, restored after.
HOST_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops)
DAEMONS=(etcd kube-apiserver containerd kube-controller-manager kube-scheduler kubelet kube-proxy coredns local-path-provisioner)

log() { printf '%s [cluster] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# nsenter, not `ip netns exec`: the latter also remounts /sys in a new mount namespace,
# which hides the cgroup hierarchy from kubelet ("failed to find cgroup mounts").
in_ns() { nsenter --net="/run/netns/$NETNS" "$@"; }
kubectl_() { "$BIN/kubectl" --kubeconfig "$STATE/kubeconfig" "$@"; }

# --- lifecycle of one daemon -------------------------------------------------------------
start_daemon() {  # name cmd... : started in the namespace, in its own session, PID recorded
    local name=$1; shift
    mkdir -p "$STATE/logs" "$STATE/pids"
    nsenter --net="/run/netns/$NETNS" setsid "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$STATE/pids/$name"
}

alive() { [ -f "$STATE/pids/$1" ] && kill -0 "$(cat "$STATE/pids/$1")" 2>/dev/null; }

wait_for() {  # description timeout-seconds daemon-to-watch command...
    local what=$1 timeout=$2 daemon=$3; shift 3
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if [ -n "$daemon" ] && ! alive "$daemon"; then
            log "$daemon exited while waiting for $what:"; tail -30 "$STATE/logs/$daemon.log" >&2; return 1
        fi
        if [ $SECONDS -ge $deadline ]; then
            log "timed out after ${timeout}s waiting for $what"
            [ -n "$daemon" ] && tail -30 "$STATE/logs/$daemon.log" >&2
            return 1
        fi
        sleep 1
    done
    log "$what"
}

stop_pid() {  # pid: TERM, then KILL after a grace period
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
}

# --- PKI -------------------------------------------------------------------------------------
cert() {  # name subject [sans]: a P-256 key and a certificate signed by the cluster CA
    local name=$1 subj=$2 sans=${3:-}
    local dir="$STATE/pki"
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/$name.key" 2>/dev/null
    openssl req -new -key "$dir/$name.key" -subj "$subj" -out "$dir/$name.csr" 2>/dev/null
    {
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=serverAuth,clientAuth"
        [ -n "$sans" ] && echo "subjectAltName=$sans"
    } >"$dir/$name.ext"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 2 -sha256 -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
}

kubeconfig() {  # name cert: a kubeconfig for that client certificate (owner-only, as kubectl wants)
    install -m 0600 /dev/null "$STATE/$1.kubeconfig"
    cat >"$STATE/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://$NODE_IP:6443", certificate-authority: "$STATE/pki/ca.crt"}
users:
- name: $1
  user: {client-certificate: "$STATE/pki/$2.crt", client-key: "$STATE/pki/$2.key"}
contexts:
- name: $1
  context: {cluster: local, user: $1}
current-context: $1
EOF
}

make_pki() {
    local dir="$STATE/pki"; mkdir -p "$dir"
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=aitrading-e2e-ca" -days 2 -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$dir/ca.crt" 2>/dev/null
    cert apiserver "/CN=kube-apiserver" \
        "IP:$NODE_IP,IP:$API_SERVICE_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    cert admin "/O=system:masters/CN=kubernetes-admin"
    cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
    cert controller-manager "/CN=system:kube-controller-manager"
    cert scheduler "/CN=system:kube-scheduler"
    cert kube-proxy "/CN=system:kube-proxy"
    cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/sa.key" 2>/dev/null
    openssl ec -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
    kubeconfig admin admin
    install -m 0600 "$STATE/admin.kubeconfig" "$STATE/kubeconfig"
    kubeconfig controller-manager controller-manager
    kubeconfig scheduler scheduler
    kubeconfig kube-proxy kube-proxy
    kubeconfig kubelet kubelet
}

# --- network namespace -------------------------------------------------------------------
make_netns() {
    ip netns add "$NETNS"
    ip link add aitk-host type veth peer name aitk-node
    ip link set aitk-node netns "$NETNS"
    ip addr add "$HOST_IP/24" dev aitk-host
    ip link set aitk-host up
    in_ns ip link set lo up
    in_ns ip addr add "$NODE_IP/24" dev aitk-node
    in_ns ip link set aitk-node up
    in_ns ip route add default via "$HOST_IP"
    in_ns sysctl -qw net.ipv4.ip_forward=1
    in_ns sysctl -qw net.ipv4.conf.all.route_localnet=1 || true
    # Pod → Service → pod on the same bridge needs bridged traffic to pass iptables.
    [ -e /proc/sys/net/bridge ] || modprobe br_netfilter 2>/dev/null || true
    in_ns sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
}

# --- configuration files -------------------------------------------------------------------
write_configs() {
    mkdir -p "$STATE/cni/net.d" "$STATE/containerd" "$STATE/local-path" "$STATE/pod-logs"
    cat >"$STATE/cni/net.d/10-aitrading.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "aitrading-e2e", "plugins": [
  {"type": "bridge", "bridge": "aitk-cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "$STATE/cni/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
    cat >"$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
[grpc]
  address = "$STATE/containerd/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  restrict_oom_score_adj = true
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
EOF
    echo "nameserver $DNS_IP" >"$STATE/resolv.conf"
    cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$STATE/pki/ca.crt"}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: "unix://$STATE/containerd/containerd.sock"
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
failSwapOn: false
readOnlyPort: 0
resolvConf: "$STATE/resolv.conf"
podLogsDir: "$STATE/pod-logs"
tlsCertFile: "$STATE/pki/kubelet.crt"
tlsPrivateKeyFile: "$STATE/pki/kubelet.key"
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%"}
healthzBindAddress: 127.0.0.1
EOF
    cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$STATE/kube-proxy.kubeconfig"}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
conntrack: {maxPerCore: 0}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF
    cat >"$STATE/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:8091
    ready 127.0.0.1:8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $STATE/admin.kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
}
EOF
    cat >"$STATE/local-path.json" <<EOF
{"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$STATE/local-path"]}]}
EOF
    cat >"$STATE/local-path-helper.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: helper-pod}
spec:
  priorityClassName: system-node-critical
  tolerations: [{key: node.kubernetes.io/disk-pressure, operator: Exists, effect: NoSchedule}]
  containers:
  - name: helper-pod
    image: docker.io/library/python:3.11-slim
    imagePullPolicy: Never
EOF
}

# The add-ons' cluster objects: CoreDNS runs on the node, reached through the usual kube-dns
# Service; local-path-provisioner runs on the node and provisions through helper pods.
addon_objects() {
    cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $DNS_IP
  ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: kube-dns, namespace: kube-system}
subsets:
- addresses: [{ip: $NODE_IP}]
  ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
---
apiVersion: v1
kind: Namespace
metadata: {name: local-path-storage}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: local-path-provisioner, namespace: local-path-storage}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: local-path-storage}
data:
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
EOF
}

# --- up ----------------------------------------------------------------------------------------
# Every image tarball of .cache/images into the node's containerd (what `kind load` does):
# at `up`, and again after `make image` while the node runs (`local-cluster.sh load`).
load_images() {
    local tarball
    for tarball in "$IMG"/*.tar; do
        ctr --address "$STATE/containerd/containerd.sock" -n k8s.io images import --no-unpack "$tarball" >/dev/null
        log "image imported: $(basename "$tarball")"
    done
}

up() {
    [ "$(id -u)" = 0 ] || { echo "the local cluster needs root (network namespace, containerd, kubelet)" >&2; exit 1; }
    local b
    for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl coredns local-path-provisioner; do
        [ -x "$BIN/$b" ] || { echo "missing $BIN/$b: run 'make cluster-bin-node' (scripts/build-k8s-test-bins.sh node)" >&2; exit 1; }
    done
    for b in containerd runc ctr ip iptables openssl; do
        command -v "$b" >/dev/null || { echo "missing $b: apt-get install containerd runc iptables iproute2 openssl" >&2; exit 1; }
    done
    [ -f "$IMG/pause.tar" ] || { echo "missing $IMG/pause.tar: run scripts/build-test-images.sh" >&2; exit 1; }
    if alive kube-apiserver; then log "already up ($STATE/kubeconfig)"; echo "$STATE/kubeconfig"; return 0; fi
    down quiet  # whatever a previous run left behind
    trap 'log "bring-up failed or interrupted: tearing down"; down; exit 1' ERR INT TERM
    mkdir -p "$STATE"
    for b in "${HOST_SYSCTLS[@]}"; do echo "$b=$(sysctl -n "$b")"; done >"$STATE/sysctl.saved"
    ls /run/netns 2>/dev/null | grep '^cni-' >"$STATE/netns.before" || true
    make_netns
    make_pki
    write_configs
    local pki="$STATE/pki"

    start_daemon etcd "$BIN/etcd" --data-dir "$STATE/etcd" --name node \
        --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster node=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381
    start_daemon containerd containerd --config "$STATE/containerd/config.toml"
    start_daemon kube-apiserver "$BIN/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
        --advertise-address "$NODE_IP" --bind-address 0.0.0.0 --secure-port 6443 \
        --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction --allow-privileged \
        --client-ca-file "$pki/ca.crt" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
        --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
        --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
        --service-cluster-ip-range "$SERVICE_CIDR" --tls-min-version VersionTLS13
    wait_for "kube-apiserver ready" 120 kube-apiserver kubectl_ get --raw /readyz
    wait_for "containerd ready" 60 containerd ctr --address "$STATE/containerd/containerd.sock" version

    load_images

    start_daemon kube-controller-manager "$BIN/kube-controller-manager" \
        --kubeconfig "$STATE/controller-manager.kubeconfig" \
        --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
        --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
        --use-service-account-credentials --service-account-private-key-file "$pki/sa.key" \
        --root-ca-file "$pki/ca.crt" --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
        --leader-elect=false --bind-address 127.0.0.1 --service-cluster-ip-range "$SERVICE_CIDR"
    start_daemon kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$STATE/scheduler.kubeconfig" \
        --authentication-kubeconfig "$STATE/scheduler.kubeconfig" --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
        --leader-elect=false --bind-address 127.0.0.1
    start_daemon kubelet "$BIN/kubelet" --config "$STATE/kubelet.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
        --root-dir "$STATE/kubelet" --node-ip "$NODE_IP" --hostname-override "$NODE_NAME" --cert-dir "$STATE/kubelet-pki"
    start_daemon kube-proxy "$BIN/kube-proxy" --config "$STATE/kube-proxy.yaml"
    addon_objects | kubectl_ apply -f - >/dev/null
    start_daemon coredns "$BIN/coredns" -conf "$STATE/Corefile"
    start_daemon local-path-provisioner "$BIN/local-path-provisioner" start \
        --kubeconfig "$STATE/admin.kubeconfig" --namespace local-path-storage \
        --config "$STATE/local-path.json" --helper-pod-file "$STATE/local-path-helper.yaml" \
        --configmap-name local-path-config --service-account-name local-path-provisioner \
        --helper-image docker.io/library/python:3.11-slim --provisioner-name rancher.io/local-path

    wait_for "node $NODE_NAME Ready" 180 kubelet \
        kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout=5s
    wait_for "CoreDNS answers through the kube-dns Service" 90 coredns \
        in_ns python3 "$ROOT/scripts/dns_query.py" kubernetes.default.svc.cluster.local "$DNS_IP"
    wait_for "default ServiceAccount exists" 60 kube-controller-manager kubectl_ -n default get serviceaccount default
    trap - ERR INT TERM
    log "up: export KUBECONFIG=$STATE/kubeconfig"
    echo "$STATE/kubeconfig"
}

# --- down --------------------------------------------------------------------------------------
pod_cgroup_pids() {  # every process in the pod cgroups kubelet created (cgroup v1 and v2)
    # A pod's cgroup can vanish between find and cat (its last process just died): cat then
    # fails, xargs answers 123, and under pipefail that aborted `down` (CI, under load).
    { find /sys/fs/cgroup -path '*kubepods*' -name cgroup.procs 2>/dev/null \
        | xargs -r cat 2>/dev/null || true; } | sort -u
}

down() {
    local quiet=${1:-}
    local name pid i
    # kubelet first, so that nothing restarts the containers being stopped.
    for name in kubelet local-path-provisioner coredns kube-proxy kube-scheduler kube-controller-manager; do
        [ -f "$STATE/pids/$name" ] && stop_pid "$(cat "$STATE/pids/$name")"
    done
    # Pod processes (containers), then the shims of our containerd.
    for i in 1 2 3 4 5; do
        pids=$(pod_cgroup_pids)
        [ -z "$pids" ] && break
        echo "$pids" | xargs -r kill -KILL 2>/dev/null || true
        sleep 0.5
    done
    for pid in $(pgrep -f "containerd-shim.*-address $STATE/containerd/containerd.sock" || true); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    for name in containerd kube-apiserver etcd; do
        [ -f "$STATE/pids/$name" ] && stop_pid "$(cat "$STATE/pids/$name")"
    done
    # Anything still running from our binaries or our state directory (e.g. a PID file lost).
    for pid in $(pgrep -f "^($BIN/|containerd --config $STATE)" || true); do stop_pid "$pid"; done
    # Mounts under our state (pod volumes, rootfs, shm), deepest first, lazily if busy.
    for i in 1 2 3; do
        mounts=$(awk -v s="$STATE/" 'index($5, s) == 1 {print $5}' /proc/self/mountinfo | sort -r)
        [ -z "$mounts" ] && break
        echo "$mounts" | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    done
    # Pod network namespaces containerd created (only those that were not there before).
    for ns in $(ls /run/netns 2>/dev/null | grep '^cni-' || true); do
        grep -qx "$ns" "$STATE/netns.before" 2>/dev/null && continue
        umount "/run/netns/$ns" 2>/dev/null || true; rm -f "/run/netns/$ns"
    done
    ip netns list 2>/dev/null | grep -qw "^$NETNS" && ip netns delete "$NETNS"
    ip link delete aitk-host 2>/dev/null || true
    # Pod cgroups (deepest first) in every hierarchy.
    find /sys/fs/cgroup -depth -type d -path '*kubepods*' -exec rmdir {} \; 2>/dev/null || true
    # Host sysctls kubelet changed.
    if [ -f "$STATE/sysctl.saved" ]; then
        while IFS='=' read -r key value; do sysctl -qw "$key=$value" || true; done <"$STATE/sysctl.saved"
    fi
    # Files kubelet and CNI keep outside our state.
    find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" -delete 2>/dev/null || true
    rm -f /var/lib/cni/results/aitrading-e2e-* 2>/dev/null || true
    if [ -d "$STATE" ]; then
        rm -rf "$STATE.last-logs"; [ -d "$STATE/logs" ] && mv "$STATE/logs" "$STATE.last-logs"
        rm -rf "$STATE"
    fi
    [ -n "$quiet" ] || log "down: no daemon, mount, namespace or cgroup left; sysctls restored (logs: $STATE.last-logs)"
}

status() {
    local name
    for name in "${DAEMONS[@]}"; do
        if alive "$name"; then echo "$name running (pid $(cat "$STATE/pids/$name"))"; else echo "$name stopped"; fi
    done
}

case "${1:-}" in
    up) up ;;
    load) load_images ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status|load" >&2; exit 2 ;;
esac
