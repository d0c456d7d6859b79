#!/usr/bin/env bash
# Serves the app on http://127.0.0.1:3000 with ./data as its volume: the Spin component on
# `wasmtime serve`, exactly as `spin up` would run it but with a writable directory.
# ADDR, DATA and POD_NAME override the address, the data directory and the replica's name.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
build_components
addr="${ADDR:-127.0.0.1:3000}"
data="${DATA:-./data}"
mkdir -p "$data"
say "serving http://$addr (visits go to $data/visits.txt; Ctrl-C stops)"
exec "$WASMTIME" serve -S cli=y --dir "$data::/data" --env POD_NAME="${POD_NAME:-local}" \
  --env PEERS="$addr" --addr "$addr" "$SPIN_COMPONENT"
