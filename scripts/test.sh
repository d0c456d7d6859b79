#!/usr/bin/env bash
# Runs every test: formatting and lints, host unit tests, the integration tests that drive
# both built components on the real runtime, the Kubernetes manifests and image, the checks
# that stay on plain containerd, and the real one-node cluster. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
need_test_tools

say "cargo fmt --check"
cargo fmt --all -- --check
say "vendor/*.patch match vendor/ (wstd, hyper)"
scripts/vendor-patch.sh --check
say "cargo clippy (host, all targets)"
cargo clippy --workspace --all-targets --quiet -- -D warnings
say "cargo clippy (wasm32-wasip2 components)"
cargo clippy --release --target wasm32-wasip2 -p spin-visits-http -p spin-visits-sqlite -p spin-visits-spin-shared \
  -p spin-visits-server --quiet -- -D warnings
build_components
# strace: tests/durability.rs watches the server component's syncs with it. e2fsprogs (mke2fs)
# and mount (losetup): tests/spin_component.rs and tests/e2e/test_spin_up.py build a volume
# whose log fails to read half-way.
need_apt strace e2fsprogs mount
say "cargo test"
cargo test --workspace

# Bounded fuzzing of what parses input (query, Accept, the log reader). cargo-fuzz needs
# nightly-only flags; RUSTC_BOOTSTRAP lets the one stable toolchain here accept them.
# Pinned: 0.13.2 builds with Rust 1.95 (--locked); another installed version is replaced.
CARGO_FUZZ_VERSION=0.13.2
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install "cargo-fuzz@$CARGO_FUZZ_VERSION" --locked --quiet
fi
for target in log_reader request; do
  say "fuzzing $target for ${FUZZ_SECONDS:-30}s"
  log="$(mktemp)"
  if ! (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" -- \
        -max_total_time="${FUZZ_SECONDS:-30}" >"$log" 2>&1); then
    tail -40 "$log"
    echo "fuzzing $target failed; the input is under fuzz/artifacts/$target" >&2
    exit 1
  fi
  grep -E "^Done [0-9]+ runs" "$log"
done

# buildah builds the node image without a Docker engine; containerd runs it with runwasi's
# shim and the Spin shim (tests/k8s/node_runtime.py, when the shims are on PATH); chromium
# renders the page.
# tests/e2e/test_spin_up.py runs on spin-up-lite from ../shared/bin (or a spin CLI).
# prometheus brings promtool, which checks /metrics and unit-tests the chart's alerts.
need_apt buildah containerd chromium prometheus
say "pytest tests/k8s tests/e2e (manifests, image, plain containerd with the shims, metrics, browser, spin up)"
pytest -q tests/k8s tests/e2e

# The real single-node Kubernetes cluster (docs/cluster.md): every part built from its Go module
# once, cached under ~/.cache/spin-visits-cluster (about 30 minutes cold on 2 cores, nothing
# when warm). gcc, libc6-dev, libseccomp-dev and pkg-config build runc with seccomp (and the
# static pause binary); libsqlite3-dev links kine to Debian's SQLite (cluster/build.sh);
# iproute2, iptables, util-linux (nsenter, unshare), openssl and curl run the node; wrk loads
# a pod from inside the node's namespace; e2fsprogs and mount give a claim an ext4 of its own
# (test_readonly_claim.py). The tests' fixture brings the cluster up and always
# takes it down again; the trap is for a session that dies before its teardown.
need_apt gcc libc6-dev libseccomp-dev pkg-config libsqlite3-dev iproute2 iptables util-linux \
  openssl curl wrk e2fsprogs mount
command -v go >/dev/null || { echo "go not found: the cluster is built from Go modules" >&2; exit 1; }
say "cluster/build.sh (cached under ~/.cache/spin-visits-cluster)"
cluster/build.sh
say "pytest tests/cluster (a real node: API server, kubelet, containerd 2, runwasi, kube-proxy, CoreDNS)"
trap 'scripts/cluster.sh down >/dev/null 2>&1 || true' EXIT
pytest -q tests/cluster
