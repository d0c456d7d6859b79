#!/usr/bin/env bash
# Builds every binary of the single-node cluster from Go modules at the versions of
# cluster/versions.env, into $CLUSTER_CACHE/<key>/bin (outside the repository), where <key> is a
# hash of versions.env and of the build modules under cluster/build. Each part is built once: a
# part whose stamp exists is skipped, so a second run costs nothing. Cold build times land in
# <key>/times, each with the load average at its end (the machine may be shared).
#
#   cluster/build.sh [part...]    parts: kubernetes containerd runc cni kine coredns pause registry
#                                 (default: all)
#
# Needs Go (1.25+; cluster/build/*/go.mod) on PATH and, from Debian: gcc and libc6-dev (cgo,
# the static pause binary), pkg-config and libseccomp-dev (runc's seccomp), libsqlite3-dev
# (kine's SQLite). Every Go module comes from the Go module proxy.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=cluster/lib.sh
source "$here/lib.sh"

mkdir -p "$CLUSTER_BIN" "$CLUSTER_KEYDIR/stamps" "$CLUSTER_KEYDIR/logs"
# -buildvcs=false: the coredns module's main package lies in this repository, and stamping it
# would run git (which fails on a checkout owned by another user).
export GOFLAGS="${GOFLAGS:-} -trimpath -buildvcs=false"
# Shared machine: builds yield to everything else.
NICE=(nice -n "${CLUSTER_BUILD_NICE:-15}")

# Fails at once, naming what is missing, rather than half-way through a long build. Run before
# the first part that is not cached, so a warm cache needs none of these.
tools_checked=
check_tools() {
    [[ -z $tools_checked ]] || return 0
    local missing=() t
    for t in go gcc pkg-config; do command -v "$t" >/dev/null || missing+=("$t"); done
    if command -v pkg-config >/dev/null; then
        pkg-config --exists libseccomp || missing+=("libseccomp-dev")
        pkg-config --exists sqlite3 || missing+=("libsqlite3-dev")
    fi
    [[ -f /usr/include/stdio.h ]] || missing+=("libc6-dev")
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "build: missing ${missing[*]} (Debian: apt-get install gcc libc6-dev pkg-config libseccomp-dev libsqlite3-dev)" >&2
        return 1
    fi
    tools_checked=1
}

# CPU seconds (user + system) of this shell's finished children so far, into variable $1.
# `times` must run in this shell (not in a $(...) subshell, which has no children of its own).
children_cpu() {
    times >"$CLUSTER_KEYDIR/.times"
    printf -v "$1" '%s' "$(tail -n1 "$CLUSTER_KEYDIR/.times" |
        awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%d", t }')"
}

# Runs one part's build unless its stamp exists, logs it, records its wall time and CPU time
# (on a shared machine the wall time says more about the load than about the build).
part() {
    local name=$1; shift
    local stamp="$CLUSTER_KEYDIR/stamps/$name" log="$CLUSTER_KEYDIR/logs/build-$name.log"
    if [[ -f $stamp ]]; then
        echo "build: $name cached"
        return 0
    fi
    check_tools
    echo "build: $name (log: $log)"
    local start cpu0 cpu1; start=$(date +%s); children_cpu cpu0
    if ! "$@" >"$log" 2>&1; then
        echo "build: $name FAILED; last lines of $log:" >&2
        tail -n 30 "$log" >&2
        return 1
    fi
    local secs=$(( $(date +%s) - start )); children_cpu cpu1
    local cpu=$(( cpu1 - cpu0 ))
    echo "$name ${secs}s cpu ${cpu}s load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$CLUSTER_KEYDIR/times"
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
    # SQLite through mattn/go-sqlite3 (cgo). Tag libsqlite3 links Debian's libsqlite3 instead of
    # compiling the 9 MB SQLite amalgamation, the longest single step of this part; Debian's is
    # built with the dbstat table kine's size query reads, the amalgamation as built here is not.
    CGO_ENABLED=1 gobin_install -tags libsqlite3 \
        -ldflags "-s -w -X github.com/k3s-io/kine/pkg/version.Version=$KINE_VERSION" \
        "github.com/k3s-io/kine@$KINE_VERSION"
}

# From cluster/build/coredns: only the plugins the cluster's Corefile names (see its main.go).
build_coredns() {
    (cd "$here/build/coredns" && CGO_ENABLED=0 "${NICE[@]}" go build -ldflags "-s -w" \
        -o "$CLUSTER_BIN/coredns" .)
}

# The image registry (github.com/distribution/distribution's cmd/registry) that `up` starts in the
# node, at localhost:5000, the address k8s/kustomization.yaml names: the node pulls from it.
build_registry() {
    CGO_ENABLED=0 gobin_install -ldflags "-s -w" \
        "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION"
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
[[ ${#parts[@]} -gt 0 ]] || parts=(pause kubernetes containerd runc cni kine coredns registry)
for p in "${parts[@]}"; do
    part "$p" "build_$p"
done
echo "build: binaries in $CLUSTER_BIN"
