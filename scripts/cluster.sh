#!/usr/bin/env bash
# A single-node Kubernetes cluster on this machine, every part built from its Go module at the
# versions of cluster/versions.env (see docs/cluster.md):
#
#   scripts/cluster.sh up       build what is missing, start everything, print `export KUBECONFIG=...`
#   scripts/cluster.sh down     stop everything and remove all it made
#   scripts/cluster.sh status   what runs
#
# Needs root. The node (containerd, kubelet, kube-proxy, the control plane, pods and Service
# addresses) lives in the network namespace $CLUSTER_NETNS; the host reaches the API server only
# through a loopback port forwarded into it. `up` is idempotent: what runs already is left alone.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=cluster/lib.sh
source "$repo/cluster/lib.sh"
# shellcheck source=cluster/pki.sh
source "$repo/cluster/pki.sh"
# shellcheck source=cluster/configs.sh
source "$repo/cluster/configs.sh"
# shellcheck source=cluster/node.sh
source "$repo/cluster/node.sh"

HOST_KUBECONFIG="$CLUSTER_STATE/kubeconfig"
CTR=("$CLUSTER_BIN/ctr" --address "$CLUSTER_STATE/containerd/containerd.sock" --namespace k8s.io)
BUILDAH=(buildah --storage-driver vfs --root "$CLUSTER_STATE/buildah/root"
    --runroot "$CLUSTER_STATE/buildah/run")

kubectl_() {
    kubectl --kubeconfig "$HOST_KUBECONFIG" "$@"
}

find_kubectl() {
    command -v kubectl >/dev/null && return 0
    # shellcheck source=scripts/tools.sh
    source "$repo/scripts/tools.sh" >/dev/null
    command -v kubectl >/dev/null || die "kubectl not found (scripts/tools.sh installs it)"
}

start_control_plane() {
    mkdir -p "$CLUSTER_STATE/kine"
    # No metrics listener: kine's default, :8080, took the node's port 8080, which the user's
    # `kubectl port-forward svc/visits 8080:80` in docs/kubernetes.md needs.
    start kine "$CLUSTER_BIN/kine" --listen-address "127.0.0.1:2379" --metrics-bind-address 0 \
        --endpoint "sqlite://$CLUSTER_STATE/kine/state.db?_journal=WAL&cache=shared&_busy_timeout=30000"
    wait_for kine 60 in_node bash -c 'exec 3<>/dev/tcp/127.0.0.1/2379'

    start kube-apiserver "$CLUSTER_BIN/kube-apiserver" \
        --etcd-servers=http://127.0.0.1:2379 \
        --advertise-address="$NODE_IP" --bind-address=0.0.0.0 --secure-port="$APISERVER_PORT" \
        --service-cluster-ip-range="$SERVICE_CIDR" \
        --client-ca-file="$PKI/ca.crt" \
        --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
        --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
        --service-account-key-file="$PKI/sa.pub" \
        --service-account-signing-key-file="$PKI/sa.key" \
        --service-account-issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
        --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
        --kubelet-preferred-address-types=InternalIP \
        --allow-privileged=true --profiling=false --v=1
    wait_for kube-apiserver 180 healthy "https://$NODE_IP:$APISERVER_PORT/readyz"

    if ! alive forward; then
        rm -f "$RUN/forward.port"
        setsid python3 "$CLUSTER_DIR/forward.py" "/run/netns/$CLUSTER_NETNS" "$NODE_IP" \
            "$APISERVER_PORT" "$RUN/forward.port" </dev/null >>"$LOGS/forward.log" 2>&1 &
        echo $! >"$RUN/forward.pid"
        wait_for forward 10 test -s "$RUN/forward.port"
    fi
    pki_kubeconfig admin "https://127.0.0.1:$(cat "$RUN/forward.port")"
    mv "$CLUSTER_STATE/admin.kubeconfig" "$HOST_KUBECONFIG"
    pki_kubeconfig admin "https://$NODE_IP:$APISERVER_PORT"
    wait_for forward 30 kubectl_ get --raw /readyz

    start kube-controller-manager "$CLUSTER_BIN/kube-controller-manager" \
        --kubeconfig="$CLUSTER_STATE/controller-manager.kubeconfig" \
        --authentication-kubeconfig="$CLUSTER_STATE/controller-manager.kubeconfig" \
        --authorization-kubeconfig="$CLUSTER_STATE/controller-manager.kubeconfig" \
        --bind-address=127.0.0.1 --leader-elect=false \
        --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
        --use-service-account-credentials=true \
        --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" --v=1
    start kube-scheduler "$CLUSTER_BIN/kube-scheduler" \
        --kubeconfig="$CLUSTER_STATE/scheduler.kubeconfig" \
        --authentication-kubeconfig="$CLUSTER_STATE/scheduler.kubeconfig" \
        --authorization-kubeconfig="$CLUSTER_STATE/scheduler.kubeconfig" \
        --bind-address=127.0.0.1 --leader-elect=false --v=1
    wait_for kube-controller-manager 90 healthy_insecure https://127.0.0.1:10257/healthz
    wait_for kube-scheduler 90 healthy_insecure https://127.0.0.1:10259/healthz
}

restart_containerd() {
    if alive containerd; then
        local pid
        pid=$(cat "$RUN/containerd.pid")
        kill "$pid"
        while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    fi
    # The open-file limit containerd has on a systemd node: its containerd.service (2.x) sets
    # no LimitNOFILE, so systemd's default applies, 1024 soft and 524288 hard (the hard one
    # capped at what this machine allows). Go raises its own soft limit but gives children the
    # original one, and CRI sets no RLIMIT_NOFILE, so every shim and pod gets 1024 soft.
    local hard
    hard=$(ulimit -Hn)
    [[ $hard == unlimited || $hard -gt 524288 ]] && hard=524288
    # containerd finds a runtime's shim (containerd-shim-<name>-<version>) on its PATH.
    start containerd prlimit --nofile="1024:$hard" env PATH="$CLUSTER_STATE/bin:$CLUSTER_BIN:$PATH" \
        "$CLUSTER_BIN/containerd" --config "$CONF/containerd.toml"
    wait_for containerd 60 "${CTR[@]}" version
}

# The wasm runtime, installed the way runtime-class/README.md tells a user to: the by-hand
# script with a local release tarball, against this containerd's config (version 3).
install_wasm_runtime() {
    local shim="${WASMTIME_SHIM:-$repo/../shared/bin/containerd-shim-wasmtime-v1}"
    [[ -x $shim ]] || shim=$(command -v containerd-shim-wasmtime-v1 || true)
    [[ -x $shim ]] || die "runwasi's containerd-shim-wasmtime-v1 not found (set WASMTIME_SHIM)"
    if [[ -x $CLUSTER_STATE/bin/containerd-shim-wasmtime-v1 ]] &&
        grep -Fq "containerd.runtimes.wasmtime]" "$CONF/containerd.toml"; then
        return 0
    fi
    local tarball="$CLUSTER_STATE/shim.tar.gz"
    tar -czf "$tarball" -C "$(dirname "$shim")" "$(basename "$shim")"
    SHIM_TARBALL="$tarball" CONTAINERD_CONFIG="$CONF/containerd.toml" \
        BIN_DIR="$CLUSTER_STATE/bin" RESTART="$repo/scripts/cluster.sh restart-containerd" \
        sh "$repo/runtime-class/by-hand/install-wasmtime-shim.sh"
    rm -f "$tarball"
}

# containerd-shim-spin for k8s/spin/, installed as runtime-class-manager's Spin Shim
# (runtime-class/runtime-class-manager/shim-spin.yaml) installs it on a labelled node: the
# binary on containerd's PATH and a runtime named after it without "containerd-shim-"
# (spin-v2), no cgroup option (this node's driver is cgroupfs). cluster_objects adds the
# Shim's RuntimeClass (wasmtime-spin-v2) and the node's spin=true label.
install_spin_runtime() {
    local shim="${SPIN_SHIM:-$repo/../shared/bin/containerd-shim-spin-v2}"
    [[ -x $shim ]] || shim=$(command -v containerd-shim-spin-v2 || true)
    if [[ ! -x $shim ]]; then
        echo "cluster: containerd-shim-spin-v2 not found (set SPIN_SHIM): no wasmtime-spin-v2" >&2
        return 0
    fi
    install -D -m 0755 "$shim" "$CLUSTER_STATE/bin/containerd-shim-spin-v2"
    grep -Fq "containerd.runtimes.spin-v2]" "$CONF/containerd.toml" && return 0
    printf '\n[plugins.%s.containerd.runtimes.spin-v2]\n  runtime_type = %s\n' \
        "'io.containerd.cri.v1.runtime'" "'io.containerd.spin.v2'" >>"$CONF/containerd.toml"
    echo "registered the spin-v2 runtime in $CONF/containerd.toml"
    if alive containerd; then restart_containerd; fi
}

# build_image NAME ARCHIVE BINARY ENTRYPOINT USER: a FROM-scratch image of one static binary.
build_image() {
    local name=$1 archive=$2 binary=$3 entry=$4 user=$5
    [[ -f $archive ]] && return 0
    local c
    c=$("${BUILDAH[@]}" from scratch)
    "${BUILDAH[@]}" copy "$c" "$binary" "$entry" >/dev/null
    "${BUILDAH[@]}" config --entrypoint "[\"$entry\"]" --user "$user" "$c"
    "${BUILDAH[@]}" commit --quiet "$c" "oci-archive:$archive.tmp:$name" >/dev/null
    "${BUILDAH[@]}" rm "$c" >/dev/null
    mv "$archive.tmp" "$archive"
}

import_image() {
    local name=$1 archive=$2
    "${CTR[@]}" images ls -q | grep -qxF "$name" && return 0
    "${CTR[@]}" images import --all-platforms "$archive" >/dev/null
}

node_images() {
    mkdir -p "$CLUSTER_KEYDIR/images"
    build_image "$PAUSE_IMAGE" "$CLUSTER_KEYDIR/images/pause.tar" "$CLUSTER_BIN/pause" /pause 65535:65535
    build_image "$COREDNS_IMAGE" "$CLUSTER_KEYDIR/images/coredns.tar" "$CLUSTER_BIN/coredns" /coredns 65532:65532
    import_image "$PAUSE_IMAGE" "$CLUSTER_KEYDIR/images/pause.tar"
    import_image "$COREDNS_IMAGE" "$CLUSTER_KEYDIR/images/coredns.tar"
}

# The project's images from their Dockerfiles, pushed to the node's registry under the names k8s/
# and k8s/spin/ give them; the node pulls them from there (imagePullPolicy IfNotPresent) as a
# user's node does. Rebuilt and pushed on every `up`: the components may have changed.
project_image() {
    local release="$repo/target/wasm32-wasip2/release"
    if [[ ${CLUSTER_SKIP_CARGO:-0} != 1 ]]; then
        (cd "$repo" && cargo build --quiet --release --target wasm32-wasip2 -p spin-visits-server \
            -p spin-visits-sqlite)
    fi
    [[ -f $release/spin-visits-server.wasm ]] || die "$release/spin-visits-server.wasm missing"
    [[ -f $release/spin_visits_sqlite.wasm ]] || die "$release/spin_visits_sqlite.wasm missing"
    image_from "$PROJECT_IMAGE" "$repo/Dockerfile"
    image_from "$SPIN_IMAGE" "$repo/spin-image/Dockerfile"
}

# image_from NAME DOCKERFILE: built by buildah from the repository root and pushed to the
# registry from inside the node's network namespace (where localhost:5000 is the registry).
# A node that already has NAME (a second `up`) pulls it again, so the tag follows the new push.
image_from() {
    "${BUILDAH[@]}" bud --quiet --platform wasi/wasm -f "$2" -t "$1" "$repo" >/dev/null
    in_net "${BUILDAH[@]}" push --quiet --tls-verify=false "$1" "docker://$1"
    if "${CTR[@]}" images ls -q | grep -qxF "$1"; then
        in_net "${CTR[@]}" images pull --plain-http --platform wasi/wasm "$1" >/dev/null
    fi
}

start_registry() {
    write_registry_config
    # No tracing exporter: nothing collects traces on the node.
    start registry env OTEL_TRACES_EXPORTER=none "$CLUSTER_BIN/registry" serve "$CONF/registry.yaml"
    wait_for registry 30 in_node curl -sf "http://$REGISTRY_ADDR/v2/"
}

start_node() {
    write_containerd_config
    write_cni_config
    write_kubelet_config
    write_kube_proxy_config
    mkdir -p "$CLUSTER_STATE/containerd" "$CLUSTER_STATE/bin" "$CLUSTER_STATE/kubelet"
    # The Spin runtime goes into the config before containerd first starts: a restart under
    # running runwasi pods left their old tasks holding the pods' ports (new ones crash-looped
    # with "address-in-use").
    install_spin_runtime
    alive containerd || restart_containerd
    install_wasm_runtime
    alive containerd || restart_containerd
    node_images
    start_registry
    project_image

    save_kernel_tunables
    # The kubelet's cgroupRoot must exist in every v1 hierarchy before it starts.
    local h
    for h in /sys/fs/cgroup/*/; do
        mkdir -p "$h$CLUSTER_CGROUP"
    done
    start kubelet "$CLUSTER_BIN/kubelet" --config="$CONF/kubelet.yaml" \
        --kubeconfig="$CLUSTER_STATE/kubelet.kubeconfig" --root-dir="$CLUSTER_STATE/kubelet" \
        --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
    wait_for kubelet 120 in_node curl -sf http://127.0.0.1:10248/healthz
    wait_for kubelet 120 kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s

    start kube-proxy "$CLUSTER_BIN/kube-proxy" --config="$CONF/kube-proxy.yaml" --v=1
    wait_for kube-proxy 60 in_node curl -sf http://127.0.0.1:10256/healthz
}

cluster_objects() {
    kubectl_ label --overwrite "node/$NODE_NAME" wasmtime=true >/dev/null
    kubectl_ apply -f "$repo/runtime-class/by-hand/runtimeclass.yaml" >/dev/null
    if [[ -x $CLUSTER_STATE/bin/containerd-shim-spin-v2 ]]; then
        kubectl_ label --overwrite "node/$NODE_NAME" spin=true >/dev/null
        kubectl_ apply -f "$CLUSTER_DIR/manifests/runtimeclass-spin.yaml" >/dev/null
    fi
    write_storage_manifest "${CLUSTER_VOLUMES:-8}"
    kubectl_ apply -f "$CONF/storage.yaml" >/dev/null
    sed -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|" -e "s|@DNS_SERVICE_IP@|$DNS_SERVICE_IP|" \
        -e "s|@CLUSTER_DOMAIN@|$CLUSTER_DOMAIN|" "$CLUSTER_DIR/manifests/coredns.yaml" |
        kubectl_ apply -f - >/dev/null
    wait_for kubelet 120 kubectl_ -n kube-system wait --for=condition=Available \
        deployment/coredns --timeout=2s
}

cmd_up() {
    [[ $(id -u) == 0 ]] || die "needs root (network namespace, mounts, cgroups)"
    local t0=$SECONDS
    "$CLUSTER_DIR/build.sh"
    find_kubectl
    mkdir -p "$CLUSTER_STATE" "$RUN" "$LOGS" "$CONF"
    pki_make
    netns_up
    start_control_plane
    start_node
    cluster_objects
    echo "cluster: up in $((SECONDS - t0))s (node $NODE_NAME in netns $CLUSTER_NETNS)" >&2
    echo "export KUBECONFIG=$HOST_KUBECONFIG"
}

cmd_down() {
    [[ $(id -u) == 0 ]] || die "needs root"
    if [[ -f $RUN/kubelet.pid ]]; then
        kill "$(cat "$RUN/kubelet.pid")" 2>/dev/null || true
    fi
    kill_cgroup_processes
    stop_node_processes
    kill_cgroup_processes
    remove_cgroups
    ip netns del "$CLUSTER_NETNS" 2>/dev/null || true
    restore_kernel_tunables
    # The node's mounts lived in its own mount namespace; anything under the state directory
    # still mounted on the host would be a leak, so unmount before removing.
    # libcni caches each pod's result under /var/lib/cni/results (not configurable through
    # containerd's CRI): remove the entries of this node's sandboxes.
    local id
    for id in $(ls "$CLUSTER_STATE/containerd/root/io.containerd.grpc.v1.cri/sandboxes" 2>/dev/null); do
        rm -f /var/lib/cni/results/*-"$id"-*
    done
    rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || true
    if [[ -d $CLUSTER_STATE ]]; then
        awk -v s="$CLUSTER_STATE" 'index($2, s) == 1 {print $2}' /proc/mounts | sort -r |
            xargs -r -n1 umount -l
        rm -rf "$CLUSTER_STATE"
    fi
    # runwasi's shim keeps per-namespace state under a fixed path.
    rm -rf /run/containerd/wasmtime/k8s.io
    echo "cluster: down"
}

cmd_status() {
    local name rc=0
    for name in holder kine kube-apiserver forward kube-controller-manager kube-scheduler \
        containerd registry kubelet kube-proxy; do
        if alive "$name"; then
            printf '%-24s running (pid %s)\n' "$name" "$(cat "$RUN/$name.pid")"
        else
            printf '%-24s stopped\n' "$name"
            rc=1
        fi
    done
    if [[ -f $HOST_KUBECONFIG ]] && alive forward; then
        find_kubectl
        kubectl_ get --raw /readyz >/dev/null 2>&1 && echo "apiserver readyz: ok" || rc=1
        kubectl_ get nodes -o wide 2>/dev/null || true
        echo "export KUBECONFIG=$HOST_KUBECONFIG"
    fi
    return $rc
}

# Sourcing the script (tests, debugging) defines the functions without running a command.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    # For runtime-class/by-hand/install-wasmtime-shim.sh's RESTART: restarts the node's containerd.
    restart-containerd) restart_containerd ;;
    *)
        echo "usage: $0 up|down|status" >&2
        exit 2
        ;;
    esac
fi
