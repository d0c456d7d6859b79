#!/usr/bin/env bash
# Rewrites vendor/wstd-0.6.8.patch: all of vendor/wstd against the release on crates.io.
#   scripts/wstd-patch.sh          # refresh the patch after editing vendor/wstd
#   scripts/wstd-patch.sh --check  # fail if the patch is stale (CI)
# Every file of vendor/wstd is compared, Cargo.toml included; a release file may be missing
# only if NOT_VENDORED lists it, so no change goes unrecorded.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.6.8
# The registry's checksum of wstd-0.6.8.crate: "cksum" in https://index.crates.io/ws/td/wstd,
# and the same in the Cargo.lock of a throwaway crate depending on wstd = "=0.6.8".
SHA256=29b52936db10a79bb724dadd1c2c3aac958e8229dcb1f1c7f2b7044ca9fc6a3a

# Release files left out because building the library does not need them (repository
# tooling, docs, lock files, examples and tests). src/lib.rs includes examples/http_server.rs,
# examples/tcp_echo_server.rs and tests/http_get.rs in its docs, so those stay; so does the
# licence, which redistribution requires. Cargo.toml is the release's, unchanged: it still
# names the examples and tests, which cargo only looks for when building them.
NOT_VENDORED=(
  .cargo/config.toml
  .cargo_vcs_info.json
  .gitattributes
  .github/CODE_OF_CONDUCT.md
  .github/CONTRIBUTING.md
  .github/actions/install-rust/action.yml
  .github/workflows/ci.yaml
  .github/workflows/publish.yml
  .github/workflows/release-process.yml
  .gitignore
  .vscode/settings.json
  ADOPTERS.md
  CODE_OF_CONDUCT.md
  CONTRIBUTING.md
  Cargo.lock
  Cargo.toml.orig
  README.md
  ci/print-current-version.sh
  ci/publish.rs
  examples/complex_http_client.rs
  examples/http_client.rs
  examples/http_server_proxy.rs
  examples/tcp_stream_client.rs
  rust-toolchain.toml
  tests/http_first_byte_timeout.rs
  tests/http_get_json.rs
  tests/http_handle_error_code.rs
  tests/http_post.rs
  tests/http_post_json.rs
  tests/http_timeout.rs
  tests/sleep.rs
)
# Ours, not wstd's: left out of the comparison.
OURS=(PATCHED.md)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
crate="$cargo_home/spin-visits-tools/wstd-$VERSION.crate"
verified() { [ -s "$1" ] && echo "$SHA256  $1" | sha256sum --quiet -c - >/dev/null 2>&1; }
if ! verified "$crate"; then
  # cargo's own download, when some build already fetched it; otherwise crates.io's.
  cached="$(ls "$cargo_home"/registry/cache/*/"wstd-$VERSION.crate" 2>/dev/null | head -1 || true)"
  mkdir -p "$(dirname "$crate")"
  if [ -n "$cached" ] && verified "$cached"; then
    cp "$cached" "$crate.part"
  else
    curl -sSfL -o "$crate.part" "https://static.crates.io/crates/wstd/wstd-$VERSION.crate"
  fi
  if ! verified "$crate.part"; then
    echo "wstd-$VERSION.crate does not match its pinned sha256 $SHA256" >&2
    rm -f "$crate.part"
    exit 1
  fi
  mv "$crate.part" "$crate"
fi

tar -xzf "$crate" -C "$work"
mv "$work/wstd-$VERSION" "$work/a"
cp -r vendor/wstd "$work/b"
for path in "${NOT_VENDORED[@]}"; do
  if [ ! -e "$work/a/$path" ]; then
    echo "NOT_VENDORED names $path, which the release does not have" >&2
    exit 1
  fi
  if [ -e "$work/b/$path" ]; then
    echo "vendor/wstd/$path is vendored after all: drop it from NOT_VENDORED" >&2
    exit 1
  fi
  rm "$work/a/$path"
done
for path in "${OURS[@]}"; do rm "$work/b/$path"; done
missing="$(cd "$work/a" && find . -type f | sed 's|^\./||' | while read -r f; do
  [ -e "$work/b/$f" ] || echo "$f"; done)"
if [ -n "$missing" ]; then
  echo "missing from vendor/wstd without being listed in NOT_VENDORED:" >&2
  echo "$missing" >&2
  exit 1
fi

status=0
(cd "$work" && diff -ruN a b) > "$work/diff" || status=$?
[ "$status" -le 1 ] || exit "$status"   # 1 is "they differ", 2 is trouble
{
  echo "vendor/wstd against wstd-$VERSION.crate from crates.io (sha256 $SHA256)."
  echo "Written by scripts/wstd-patch.sh; not edited by hand."
  echo
  echo "Release files not vendored (the build does not need them):"
  printf '  %s\n' "${NOT_VENDORED[@]}"
  echo "Added: ${OURS[*]} (this project's notes). Every other file is below or unchanged."
  echo
  # -N: a file added to vendor/wstd shows in full. Dates would make every refresh a change.
  sed -E 's/^((---|\+\+\+) [^\t]+)\t.*/\1/' "$work/diff"
} > "$work/patch"

if [ "${1:-}" = "--check" ]; then
  if ! cmp -s "$work/patch" vendor/wstd-0.6.8.patch; then
    diff -u vendor/wstd-0.6.8.patch "$work/patch" | head -40 >&2 || true
    echo "vendor/wstd-0.6.8.patch is stale: run scripts/wstd-patch.sh" >&2
    exit 1
  fi
else
  cp "$work/patch" vendor/wstd-0.6.8.patch
fi
