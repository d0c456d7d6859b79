# Shared by cluster/build.sh and scripts/cluster.sh: the versions and where their build lives.
# shellcheck shell=bash
CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=cluster/versions.env
source "$CLUSTER_DIR/versions.env"
CLUSTER_CACHE="${CLUSTER_CACHE:-$HOME/.cache/spin-visits-cluster}"
# Keyed by the versions and the build modules (their go.sum pins every dependency, coredns's
# main.go picks its plugins). Not by build.sh: a change to how it builds a part should come with
# a version or module change, or a removed stamp, so that editing a comment costs no rebuild.
CLUSTER_KEY=$(cat "$CLUSTER_DIR/versions.env" "$CLUSTER_DIR"/build/*/go.mod \
    "$CLUSTER_DIR"/build/*/go.sum "$CLUSTER_DIR"/build/*/*.go | sha256sum | cut -c1-16)
CLUSTER_KEYDIR="$CLUSTER_CACHE/$CLUSTER_KEY"
CLUSTER_BIN="$CLUSTER_KEYDIR/bin"
CLUSTER_CNI_BIN="$CLUSTER_KEYDIR/cni-bin"

# Where a running cluster keeps its state (certificates, data, logs, pids); `down` removes it.
CLUSTER_STATE="${CLUSTER_STATE:-/var/lib/spin-visits-cluster}"
# The node's network namespace: every cluster address below exists only inside it.
CLUSTER_NETNS="${CLUSTER_NETNS:-spin-visits-node}"
NODE_NAME=spin-visits-node
NODE_IP=10.88.0.2
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/24
KUBERNETES_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
# kubelet/kube-proxy/kubectl-inside-the-node ports; fixed, since the namespace has its own ports.
APISERVER_PORT=6443
# Every cgroup the node makes lives under this one, in each v1 hierarchy.
CLUSTER_CGROUP=spin-visits-node
# Images the node runs besides the project's, built here from the binaries above.
PAUSE_IMAGE="localhost/spin-visits-cluster/pause:$KUBERNETES_VERSION"
COREDNS_IMAGE="localhost/spin-visits-cluster/coredns:$COREDNS_VERSION"
# The registry the kustomizations name (localhost:5000), listening on the node's loopback.
REGISTRY_ADDR=127.0.0.1:5000
# The name k8s/kustomization.yaml gives the project's image.
PROJECT_IMAGE=localhost:5000/spin-visits:0.1.0
# The name k8s/spin/kustomization.yaml gives the Spin component's image (spin-image/).
SPIN_IMAGE=localhost:5000/spin-visits-spin:0.1.0
