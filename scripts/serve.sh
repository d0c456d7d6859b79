#!/usr/bin/env bash
# Serves the app on http://127.0.0.1:3000 with ./data as its volume: the Spin component with
# `spin up --direct-mounts --allow-transient-write` when a Spin CLI is installed (what the
# README's "With Spin" runs), else on `wasmtime serve`, as `spin up` would run it but with a
# writable directory. ADDR, DATA and POD_NAME override the address, the data directory and
# the replica's name; spin.toml fixes all three, so setting any of them means wasmtime serve.
# spin-up-lite (../shared/bin) is not used: it is a test host, not something users install.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
build_components
if command -v spin >/dev/null && [ -z "${ADDR:-}${DATA:-}${POD_NAME:-}" ]; then
  mkdir -p data
  say "serving http://127.0.0.1:3000 with spin up (visits go to data/visits.txt; Ctrl-C stops)"
  exec spin up --direct-mounts --allow-transient-write
fi
addr="${ADDR:-127.0.0.1:3000}"
data="${DATA:-./data}"
mkdir -p "$data"
say "serving http://$addr (visits go to $data/visits.txt; Ctrl-C stops)"
exec "$WASMTIME" serve -S cli=y --dir "$data::/data" --env POD_NAME="${POD_NAME:-local}" \
  --env PEERS="$addr" --addr "$addr" "$SPIN_COMPONENT"
