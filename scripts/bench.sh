#!/usr/bin/env bash
# Runs the benchmarks (bench/run.py) and writes BENCHMARKS.md; about 50 minutes with the
# defaults (6 of them Spin's trigger, bench/spin_trigger.py; about 30 load on one replica,
# bench/load.py: wasmtime run, runwasi's release shim (wasmtime 27) and main's (36), native, and
# section 9 as deployed: the manifest's limits as a cgroup and fd 1024:1024).
# Arguments go to bench/run.py (e.g. --seconds 5 --runs 1 for a quick look; `--only load
# --sections 89` runs load sections 8 and 9 alone and prints them). BENCHMARKS.md is only ever
# one whole run; the analysis of its figures is bench/notes.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
need_test_tools
# runwasi's wasmtime shim (the 0.6.0 release; runwasi-main/ beside it), for the node-runtime
# rows (bench/node.py), as .ci/run does.
if [ -d ../shared/bin ]; then
  PATH="$(cd ../shared/bin && pwd):$PATH"
  export PATH
fi
need_apt wrk buildah containerd
# Flask and waitress run the seed-style baseline.
pip_set bench flask==3.1.2 waitress==3.0.2
build_components
say "building the native baseline"
cargo build --profile bench-native -p spin-visits-native >&2
say "benchmarking"
BENCH_COMMAND="scripts/bench.sh${*:+ $*}" exec "$TOOLS_DIR/bin/python" bench/run.py "$@"
