#!/usr/bin/env bash
# Rewrites vendor/CRATE-VERSION.patch for each vendored crate: all of vendor/CRATE against
# its release on crates.io, so every change we carry is visible in one diff.
#   scripts/vendor-patch.sh          # refresh the patches after editing vendor/
#   scripts/vendor-patch.sh --check  # fail if a patch is stale (CI)
# Every file of vendor/CRATE is compared, Cargo.toml included; a release file may be missing
# only if NOT_VENDORED lists it, so no change goes unrecorded.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each crate: its version, the registry's checksum of CRATE-VERSION.crate ("cksum" in the
# crates.io index, the same as in Cargo.lock), and the release files left out because
# building the library does not need them. The licence stays, which redistribution requires;
# Cargo.toml is the release's, unchanged.
wstd() {
  VERSION=0.6.8
  SHA256=29b52936db10a79bb724dadd1c2c3aac958e8229dcb1f1c7f2b7044ca9fc6a3a
  # Repository tooling, docs, lock files, examples and tests. src/lib.rs includes
  # examples/http_server.rs, examples/tcp_echo_server.rs and tests/http_get.rs in its docs,
  # so those stay; Cargo.toml still names the rest, which cargo only looks for when building
  # them.
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
}
hyper() {
  VERSION=1.12.0
  SHA256=2c3e324da4c95177d6291d4c8730197c0d1822f8a9766814a4a44fa5ab797c9c
  NOT_VENDORED=(.cargo_vcs_info.json Cargo.lock Cargo.toml.orig README.md)
}
CRATES=(wstd hyper)
# Ours, not the crate's: left out of the comparison.
OURS=(PATCHED.md)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
verified() { [ -s "$1" ] && echo "$SHA256  $1" | sha256sum --quiet -c - >/dev/null 2>&1; }

# refresh CRATE [--check]
refresh() {
  local name="$1" check="${2:-}"
  "$name"
  local dir="$work/$name" crate cached status missing
  mkdir "$dir"
  cargo_home="${CARGO_HOME:-$HOME/.cargo}"
  crate="$cargo_home/spin-visits-tools/$name-$VERSION.crate"
  if ! verified "$crate"; then
    # cargo's own download, when some build already fetched it; otherwise crates.io's.
    cached="$(ls "$cargo_home"/registry/cache/*/"$name-$VERSION.crate" 2>/dev/null | head -1 || true)"
    mkdir -p "$(dirname "$crate")"
    if [ -n "$cached" ] && verified "$cached"; then
      cp "$cached" "$crate.part"
    else
      curl -sSfL -o "$crate.part" "https://static.crates.io/crates/$name/$name-$VERSION.crate"
    fi
    if ! verified "$crate.part"; then
      echo "$name-$VERSION.crate does not match its pinned sha256 $SHA256" >&2
      rm -f "$crate.part"
      return 1
    fi
    mv "$crate.part" "$crate"
  fi

  tar -xzf "$crate" -C "$dir"
  mv "$dir/$name-$VERSION" "$dir/a"
  cp -r "vendor/$name" "$dir/b"
  for path in "${NOT_VENDORED[@]}"; do
    if [ ! -e "$dir/a/$path" ]; then
      echo "NOT_VENDORED names $path, which the release does not have" >&2
      return 1
    fi
    if [ -e "$dir/b/$path" ]; then
      echo "vendor/$name/$path is vendored after all: drop it from NOT_VENDORED" >&2
      return 1
    fi
    rm "$dir/a/$path"
  done
  for path in "${OURS[@]}"; do rm "$dir/b/$path"; done
  missing="$(cd "$dir/a" && find . -type f | sed 's|^\./||' | while read -r f; do
    [ -e "$dir/b/$f" ] || echo "$f"; done)"
  if [ -n "$missing" ]; then
    echo "missing from vendor/$name without being listed in NOT_VENDORED:" >&2
    echo "$missing" >&2
    return 1
  fi

  status=0
  (cd "$dir" && diff -ruN a b) > "$dir/diff" || status=$?
  [ "$status" -le 1 ] || return "$status"   # 1 is "they differ", 2 is trouble
  {
    echo "vendor/$name against $name-$VERSION.crate from crates.io (sha256 $SHA256)."
    echo "Written by scripts/vendor-patch.sh; not edited by hand."
    echo
    echo "Release files not vendored (the build does not need them):"
    printf '  %s\n' "${NOT_VENDORED[@]}"
    echo "Added: ${OURS[*]} (this project's notes). Every other file is below or unchanged."
    echo
    # -N: a file added to vendor/$name shows in full. Dates would make every refresh a change.
    sed -E 's/^((---|\+\+\+) [^\t]+)\t.*/\1/' "$dir/diff"
  } > "$dir/patch"

  if [ "$check" = "--check" ]; then
    if ! cmp -s "$dir/patch" "vendor/$name-$VERSION.patch"; then
      diff -u "vendor/$name-$VERSION.patch" "$dir/patch" | head -40 >&2 || true
      echo "vendor/$name-$VERSION.patch is stale: run scripts/vendor-patch.sh" >&2
      return 1
    fi
  else
    cp "$dir/patch" "vendor/$name-$VERSION.patch"
  fi
}

for name in "${CRATES[@]}"; do refresh "$name" "${1:-}"; done
