#!/usr/bin/env bash
# Serves the app on http://127.0.0.1:3000 with ./data as its volume: the Spin component on
# `wasmtime serve`, exactly as `spin up` would run it but with a writable directory.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
build_components
mkdir -p data
say "serving http://127.0.0.1:3000 (visits go to ./data/visits.txt; Ctrl-C stops)"
exec "$WASMTIME" serve -S cli=y --dir ./data::/data --env POD_NAME="${POD_NAME:-local}" \
  --addr "${ADDR:-127.0.0.1:3000}" "$SPIN_COMPONENT"
