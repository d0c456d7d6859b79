# The node's network namespace and the processes that run in it. Sourced by scripts/cluster.sh.
# shellcheck shell=bash

RUN="$CLUSTER_STATE/run"
LOGS="$CLUSTER_STATE/logs"

die() {
    echo "cluster: $*" >&2
    exit 1
}

# One process holds the node's mount namespace (a slave of the host's, so the kubelet's and
# containerd's mounts never appear on the host and vanish with the node) inside its network
# namespace; every component joins both, so the kubelet's volume mounts are the ones
# containerd bind-mounts into containers.
netns_up() {
    if ! ip netns list | grep -qx "$CLUSTER_NETNS\( .*\)\?"; then
        ip netns add "$CLUSTER_NETNS"
    fi
    local ns=(ip netns exec "$CLUSTER_NETNS")
    "${ns[@]}" ip link set lo up
    # The node's own address, on its loopback (this kernel has no dummy interfaces); local to
    # the namespace, so pods reach it through their bridge's gateway.
    if ! "${ns[@]}" ip -4 addr show dev lo | grep -qF " $NODE_IP/"; then
        "${ns[@]}" ip addr add "$NODE_IP/32" dev lo
    fi
    # The node has no default route (nothing leaves it), so the Service range needs a route of
    # its own for the node's own connections: kube-proxy's OUTPUT rules DNAT them to a pod
    # only after the kernel has found a route ("Network is unreachable" otherwise).
    "${ns[@]}" ip route replace "$SERVICE_CIDR" dev lo src "$NODE_IP"
    # Namespace-local: the node forwards between its pods' bridge and its Services.
    "${ns[@]}" sysctl -qw net.ipv4.ip_forward=1
    if ! alive holder; then
        # The kubelet writes containers' logs under /var/log/pods and /var/log/containers (the
        # latter not configurable): inside the node, /var/log is a directory of the state.
        mkdir -p "$CLUSTER_STATE/node-var-log"
        setsid nsenter --net="/run/netns/$CLUSTER_NETNS" -- \
            unshare --mount --propagation slave -- sh -c \
            'mount --bind "$1" /var/log && exec sleep infinity' sh "$CLUSTER_STATE/node-var-log" \
            </dev/null >/dev/null 2>&1 &
        echo $! >"$RUN/holder.pid"
        sleep 0.2
        alive holder || die "could not start the node's namespace holder"
    fi
}

# Runs a command inside the node (its network and mount namespaces).
in_node() {
    nsenter --target "$(cat "$RUN/holder.pid")" --net --mount -- "$@"
}

# Runs a command in the node's network namespace only (the host's files and mounts): what a
# user's shell on the node sees as localhost.
in_net() {
    nsenter --net="/run/netns/$CLUSTER_NETNS" -- "$@"
}

alive() {
    local pid
    pid=$(cat "$RUN/$1.pid" 2>/dev/null) || return 1
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

# start NAME CMD...: starts CMD inside the node unless NAME runs already; log in $LOGS/NAME.log.
start() {
    local name=$1
    shift
    alive "$name" && return 0
    echo "cluster: starting $name"
    setsid nsenter --target "$(cat "$RUN/holder.pid")" --net --mount -- "$@" \
        </dev/null >>"$LOGS/$name.log" 2>&1 &
    echo $! >"$RUN/$name.pid"
}

# fail NAME WHY: ends `up` with the tail of NAME's log.
fail() {
    echo "cluster: $1 did not come up: $2" >&2
    if [[ -f $LOGS/$1.log ]]; then
        echo "---- last lines of $LOGS/$1.log ----" >&2
        tail -n "${CLUSTER_LOG_LINES:-40}" "$LOGS/$1.log" >&2
    fi
    exit 1
}

# wait_for NAME SECONDS CHECK...: polls CHECK until it succeeds; fails if NAME exits or the
# time runs out (NAME "-" for a check that has no process of its own).
wait_for() {
    local name=$1 secs=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if [[ $name != - ]] && ! alive "$name"; then
            fail "$name" "the process exited"
        fi
        ((SECONDS < deadline)) || fail "$name" "not ready after ${secs}s (check: $*)"
        sleep 0.5
    done
}

# An HTTPS health endpoint inside the node, as the admin.
healthy() {
    in_node curl -sf --max-time 3 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" \
        --key "$PKI/admin.key" "$1"
}

# healthy_insecure URL: a component's own self-signed /healthz (always-allowed path).
healthy_insecure() {
    in_node curl -sfk --max-time 3 "$1"
}

# The machine-wide kernel settings the kubelet sets at start-up (its "kernel defaults");
# `up` records them first, `down` puts them back.
KERNEL_TUNABLES=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

save_kernel_tunables() {
    [[ -f $CLUSTER_STATE/sysctl.saved ]] && return 0
    sysctl "${KERNEL_TUNABLES[@]}" | sed 's/ = /=/' >"$CLUSTER_STATE/sysctl.saved"
}

restore_kernel_tunables() {
    [[ -f $CLUSTER_STATE/sysctl.saved ]] || return 0
    local kv
    while read -r kv; do
        sysctl -qw "$kv" || true
    done <"$CLUSTER_STATE/sysctl.saved"
}

# Every process in the node's network namespace (the components, the shims and the pods').
node_pids() {
    ip netns pids "$CLUSTER_NETNS" 2>/dev/null || true
}

# Stops every process in the node: TERM first, then KILL after a grace period.
stop_node_processes() {
    local pids name
    for name in forward; do
        alive "$name" && kill "$(cat "$RUN/$name.pid")" 2>/dev/null || true
    done
    pids=$(node_pids)
    [[ -z $pids ]] && return 0
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while [[ -n $(node_pids) ]] && ((SECONDS < deadline)); do
        sleep 0.3
    done
    pids=$(node_pids)
    # shellcheck disable=SC2086
    [[ -n $pids ]] && kill -KILL $pids 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while [[ -n $(node_pids) ]] && ((SECONDS < deadline)); do
        sleep 0.3
    done
}

# Every process in the node's cgroups: the pods' containers, each in a network namespace of
# its own (the kubelet made all of them under /$CLUSTER_CGROUP).
cgroup_pids() {
    local root
    for root in /sys/fs/cgroup/*/"$CLUSTER_CGROUP" /sys/fs/cgroup/unified/"$CLUSTER_CGROUP"; do
        [[ -d $root ]] || continue
        find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null
    done | sort -u
}

kill_cgroup_processes() {
    local pids deadline=$((SECONDS + 10))
    while pids=$(cgroup_pids) && [[ -n $pids ]] && ((SECONDS < deadline)); do
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        sleep 0.3
    done
}

# Removes the node's cgroups in every v1 hierarchy (and v2), deepest first.
remove_cgroups() {
    local root dir
    for root in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
        dir="$root$CLUSTER_CGROUP"
        [[ -d $dir ]] || continue
        find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
}
