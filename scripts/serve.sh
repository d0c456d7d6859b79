#!/usr/bin/env bash
# Serves the app on http://127.0.0.1:3000 with ./data as its volume.
#   scripts/serve.sh            the Spin component: `spin up --direct-mounts
#                               --allow-transient-write` when a Spin CLI is installed (what the
#                               README's "With Spin" runs), else `wasmtime serve`, as `spin up`
#                               would run it but with a writable directory
#   scripts/serve.sh --server   the server component on `wasmtime run`, as the StatefulSet runs
#                               it; its admin port (/drain) on loopback only
# ADDR, DATA and POD_NAME override the address, the data directory and the replica's name
# (ADMIN_ADDR the server's admin port); spin.toml fixes the first three, so setting any of them
# means wasmtime serve. Installs only what serving needs: the wasm target and wasmtime.
# spin-up-lite (../shared/bin) is not used: it is a test host, not something users install.
set -euo pipefail
cd "$(dirname "$0")/.."
component=spin
case "${1:-}" in
  --server) component=server ;;
  "") ;;
  *) echo "usage: scripts/serve.sh [--server]" >&2; exit 2 ;;
esac
source scripts/tools.sh
build_components
addr="${ADDR:-127.0.0.1:3000}"
data="${DATA:-./data}"
mkdir -p "$data"
if [ "$component" = server ]; then
  say "serving http://$addr with the server component (visits go to $data/visits.txt; Ctrl-C stops)"
  exec "$WASMTIME" run -S inherit-network=y -S tcp=y -S cli=y -S allow-ip-name-lookup=y \
    --dir "$data::/data" --env LISTEN_ADDR="$addr" --env POD_NAME="${POD_NAME:-local}" \
    --env PEERS="$addr" --env ADMIN_ADDR="${ADMIN_ADDR:-127.0.0.1:0}" "$SERVER_COMPONENT"
fi
if command -v spin >/dev/null && [ -z "${ADDR:-}${DATA:-}${POD_NAME:-}" ]; then
  say "serving http://127.0.0.1:3000 with spin up (visits go to data/visits.txt; Ctrl-C stops)"
  exec spin up --direct-mounts --allow-transient-write
fi
say "serving http://$addr (visits go to $data/visits.txt; Ctrl-C stops)"
exec "$WASMTIME" serve -S cli=y --dir "$data::/data" --env POD_NAME="${POD_NAME:-local}" \
  --env PEERS="$addr" --addr "$addr" "$SPIN_COMPONENT"
