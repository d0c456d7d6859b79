#!/usr/bin/env bash
# Regenerates cluster/build/kubernetes/go.mod and go.sum from cluster/versions.env: requires
# k8s.io/kubernetes at KUBERNETES_VERSION, points every staging module it replaces with a local
# path (./staging/src/k8s.io/...) at its published KUBERNETES_STAGING_VERSION, copies its godebug
# default, and lets `go mod tidy` pin the rest. Run after changing either version; the new go.sum
# changes the cache key, so the next cluster/build.sh rebuilds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=cluster/versions.env
source "$here/../versions.env"
out="${1:-$here/kubernetes}"  # another directory: to compare without overwriting
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

upstream=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
read -r gover godebug < <(go mod edit -json "$upstream" | python3 -c '
import json, sys
m = json.load(sys.stdin)
print(m["Go"], " ".join(d["Key"] + "=" + d["Value"] for d in m.get("GoDebug") or []))')
staging=$(go mod edit -json "$upstream" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if r["New"]["Path"].startswith("./staging/"):
        print(r["Old"]["Path"])')

cd "$tmp"
cat >go.mod <<MOD
// Builds the Kubernetes binaries of cluster/versions.env (KUBERNETES_VERSION) with one \`go build\`.
// k8s.io/kubernetes replaces its staging modules with local paths, so \`go install\` of its
// commands fails; this module requires it and points each staging module at its published tag.
// Regenerate with cluster/build/gen-kubernetes-mod.sh after changing versions.env.
module spin-visits/cluster/kubernetes

go $gover
$(for d in $godebug; do printf '\ngodebug %s\n' "$d"; done)

require k8s.io/kubernetes $KUBERNETES_VERSION

replace (
$(for m in $staging; do printf '\t%s => %s %s\n' "$m" "$m" "$KUBERNETES_STAGING_VERSION"; done)
)

tool (
$(for c in kube-apiserver kube-controller-manager kube-proxy kube-scheduler kubelet; do
    printf '\tk8s.io/kubernetes/cmd/%s\n' "$c"; done)
)
MOD
GOFLAGS=-mod=mod go mod tidy
cp go.mod go.sum "$out/"
echo "wrote $out/go.mod and go.sum"
