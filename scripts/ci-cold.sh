#!/usr/bin/env bash
# Times `.ci/run` as a fresh machine runs it: a fresh clone of HEAD (what is committed, not the
# work tree) beside ../shared, with an empty HOME (the pinned Python tools, the cluster's cache,
# Go's module and build caches) and an empty CARGO_HOME (the crate registry; cargo-fuzz is
# built again). Still warm: Debian's packages and the Rust toolchain with its wasm32-wasip2
# target. Run as root, like scripts/test.sh; takes about 13 GB under $COLD, removed at the end.
#   scripts/ci-cold.sh        # COLD defaults to /tmp/spin-visits-cold
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
shared="$(cd "$repo/../shared" && pwd)"
cold="${COLD:-/tmp/spin-visits-cold}"
rm -rf "$cold"
mkdir -p "$cold/home" "$cold/cargo/bin"
trap 'rm -rf "$cold"' EXIT

# rustup's proxies, and nothing cargo installed.
cp "$(command -v rustup)" "$cold/cargo/bin/"
for tool in cargo cargo-clippy cargo-fmt clippy-driver rustc rustdoc rustfmt; do
  ln -s rustup "$cold/cargo/bin/$tool"
done
ln -s "$shared" "$cold/shared"
git clone -q "$repo" "$cold/ci"

# The same PATH without what this HOME installed (cargo's and Go's bin directories).
path="$cold/cargo/bin"
IFS=: read -ra dirs <<< "$PATH"
for dir in "${dirs[@]}"; do
  case "$dir" in "$HOME/.cargo/bin" | "$HOME/go/bin") ;; *) path="$path:$dir" ;; esac
done

started=$(date +%s)
status=0
# Go's settings written with `go env -w` live under HOME: carried over, as the machine's own.
env HOME="$cold/home" CARGO_HOME="$cold/cargo" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" \
  GOFLAGS="$(go env GOFLAGS)" GOTOOLCHAIN="$(go env GOTOOLCHAIN)" GOPROXY="$(go env GOPROXY)" \
  GOSUMDB="$(go env GOSUMDB)" PATH="$path" CI=true bash "$cold/ci/.ci/run" || status=$?
echo "cold .ci/run of $(git -C "$repo" rev-parse --short HEAD): exit $status after \
$(($(date +%s) - started)) s (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
exit "$status"
