#!/usr/bin/env bash
# Builds every binary of the single-node cluster from Go modules at the versions of
# cluster/versions.env, into $CLUSTER_CACHE/<key>/bin (outside the repository), where <key> is a
# hash of versions.env and of the Kubernetes build module. Each part is built once: a part whose
# stamp exists is skipped, so a second run costs nothing. Cold build times land in <key>/times.
#
#   cluster/build.sh [part...]    parts: kubernetes containerd runc cni kine coredns pause (default: all)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=cluster/lib.sh
source "$here/lib.sh"

mkdir -p "$CLUSTER_BIN" "$CLUSTER_KEYDIR/stamps" "$CLUSTER_KEYDIR/logs"
export GOFLAGS="${GOFLAGS:-} -trimpath"
# Shared machine: builds yield to everything else.
NICE=(nice -n "${CLUSTER_BUILD_NICE:-15}")

# Runs one part's build unless its stamp exists, logs it, records its wall time.
part() {
    local name=$1; shift
    local stamp="$CLUSTER_KEYDIR/stamps/$name" log="$CLUSTER_KEYDIR/logs/build-$name.log"
    if [[ -f $stamp ]]; then
        echo "build: $name cached"
        return 0
    fi
    echo "build: $name (log: $log)"
    local start; start=$(date +%s)
    if ! "$@" >"$log" 2>&1; then
        echo "build: $name FAILED; last lines of $log:" >&2
        tail -n 30 "$log" >&2
        return 1
    fi
    local secs=$(( $(date +%s) - start ))
    echo "$name ${secs}s" >>"$CLUSTER_KEYDIR/times"
    touch "$stamp"
    echo "build: $name done in ${secs}s"
}

# Installs `go install` targets of one module version into $CLUSTER_BIN.
gobin_install() {
    GOBIN="$CLUSTER_BIN" "${NICE[@]}" go install "$@"
}

build_kubernetes() {
    local v=$KUBERNETES_VERSION major minor ld p
    major=${v#v}; major=${major%%.*}
    minor=${v#v*.}; minor=${minor%%.*}
    ld="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ld+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$minor"
        ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
    done
    # One `go build` for all five commands: their shared packages compile once.
    (cd "$here/build/kubernetes" && CGO_ENABLED=0 "${NICE[@]}" go build -ldflags "$ld" -o "$CLUSTER_BIN/" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
        k8s.io/kubernetes/cmd/kube-proxy)
}

build_containerd() {
    local m=github.com/containerd/containerd/v2 v=$CONTAINERD_VERSION
    # No cgo: the btrfs snapshotter (the one cgo user) is left out, overlayfs is the default.
    (cd "$here/build/containerd" && CGO_ENABLED=0 "${NICE[@]}" go build -tags "no_btrfs" \
        -ldflags "-s -w -X $m/version.Version=$v -X $m/version.Package=$m" -o "$CLUSTER_BIN/" \
        "$m/cmd/containerd" "$m/cmd/containerd-shim-runc-v2" "$m/cmd/ctr")
}

build_runc() {
    # seccomp needs cgo and libseccomp (Debian's libseccomp-dev): the pods' RuntimeDefault profile.
    CGO_ENABLED=1 gobin_install -tags "seccomp" \
        -ldflags "-s -w -X main.version=${RUNC_VERSION#v}" "github.com/opencontainers/runc@$RUNC_VERSION"
}

build_cni() {
    local m=github.com/containernetworking/plugins/plugins v=$CNI_PLUGINS_VERSION
    mkdir -p "$CLUSTER_CNI_BIN"
    CGO_ENABLED=0 GOBIN="$CLUSTER_CNI_BIN" "${NICE[@]}" go install -ldflags "-s -w" \
        "$m/main/bridge@$v" "$m/main/loopback@$v" "$m/ipam/host-local@$v" \
        "$m/meta/portmap@$v" "$m/meta/bandwidth@$v" "$m/meta/firewall@$v"
}

build_kine() {
    # SQLite through mattn/go-sqlite3 (cgo) in this kine line.
    CGO_ENABLED=1 gobin_install -ldflags "-s -w" "github.com/k3s-io/kine@$KINE_VERSION"
}

build_coredns() {
    CGO_ENABLED=0 gobin_install -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
}

# The sandbox ("pause") binary: Kubernetes' own build/pause/linux/pause.c from the module source,
# linked statically; cluster.sh wraps it into an image. No image can be pulled here.
build_pause() {
    local src
    src=$(cd "$here/build/kubernetes" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
    [[ -n $src ]] || (cd "$here/build/kubernetes" && go mod download k8s.io/kubernetes)
    src=$(cd "$here/build/kubernetes" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
    gcc -Os -static -Wall -Werror -DVERSION="$KUBERNETES_VERSION" \
        -o "$CLUSTER_BIN/pause" "$src/build/pause/linux/pause.c"
}

parts=("$@")
[[ ${#parts[@]} -gt 0 ]] || parts=(pause kubernetes containerd runc cni kine coredns)
for p in "${parts[@]}"; do
    part "$p" "build_$p"
done
echo "build: binaries in $CLUSTER_BIN"
