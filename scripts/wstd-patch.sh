#!/usr/bin/env bash
# Rewrites vendor/wstd-0.6.8.patch: the vendored wstd against the release on crates.io.
#   scripts/wstd-patch.sh          # refresh the patch after editing vendor/wstd
#   scripts/wstd-patch.sh --check  # fail if the patch is stale (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
crate="${CARGO_HOME:-$HOME/.cargo}/spin-visits-tools/wstd-0.6.8.crate"
if [ ! -s "$crate" ]; then
  mkdir -p "$(dirname "$crate")"
  curl -sSfL -o "$crate.part" https://static.crates.io/crates/wstd/wstd-0.6.8.crate
  mv "$crate.part" "$crate"
fi
tar -xzf "$crate" -C "$work"
mv "$work/wstd-0.6.8" "$work/a"
cp -r vendor/wstd "$work/b"
# Dates would make every refresh a change: drop them from the headers.
(cd "$work" && diff -ru a/src b/src | sed -E 's/^((---|\+\+\+) [^\t]+)\t.*/\1/') > "$work/patch" || true
if [ "${1:-}" = "--check" ]; then
  if ! cmp -s "$work/patch" vendor/wstd-0.6.8.patch; then
    echo "vendor/wstd-0.6.8.patch is stale: run scripts/wstd-patch.sh" >&2
    exit 1
  fi
else
  cp "$work/patch" vendor/wstd-0.6.8.patch
fi
