#!/usr/bin/env bash
# Runs every test: formatting and lints, host unit tests, the integration tests that drive
# both built components on the real runtime, and the Kubernetes manifests, image and
# StatefulSet rehearsal. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy (host, all targets)"
cargo clippy --workspace --all-targets --quiet -- -D warnings
say "cargo clippy (wasm32-wasip2 components)"
cargo clippy --release --target wasm32-wasip2 -p spin-visits-http -p spin-visits-server --quiet -- -D warnings
build_components
say "cargo test"
cargo test --workspace

# buildah builds the node image without a Docker engine.
need_apt buildah
say "pytest tests/k8s (manifests, image, StatefulSet rehearsal)"
pytest -q tests/k8s
