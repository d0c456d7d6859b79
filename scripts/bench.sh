#!/usr/bin/env bash
# Runs the benchmarks (bench/run.py) and writes BENCHMARKS.md: one run, every section, with its
# date, machine, versions and command. As root (containerd, tmpfs claims, cgroups). 35 minutes
# with `--seconds 4 --runs 2` on 2 cores at load 7-17, builds warm (2026-12-03): sections 1-5
# (visit path, log growth, whole-log read, start, Spin's trigger) 7; 6-9 (bench/load.py, 5 s
# runs whatever --seconds: wasmtime run, runwasi's release shim (wasmtime 27) and main's (36),
# native, and as deployed) 19; 10 sealed segments (bench/segments.py) 5; 11 fair at the cap
# (bench/fair.py, slowhttptest) 1; 12 the Spin component on containerd-shim-spin
# (bench/spin_shim.py, strace) 4. The defaults (10 s, 3 runs) take about an hour.
# Arguments go to bench/run.py (e.g. --seconds 2 --runs 1 for a quick look; `--only load
# --sections 89`, `--only segments`, `--only fair` or `--only spin-shim` runs one step alone and
# prints it). BENCHMARKS.md is only ever one whole run; the analysis of its figures is
# bench/notes.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
need_test_tools
# runwasi's wasmtime shim (the 0.6.0 release; runwasi-main/ beside it) and containerd-shim-spin-v2,
# for the node-runtime rows (bench/node.py, bench/spin_shim.py), as .ci/run does.
if [ -d ../shared/bin ]; then
  PATH="$(cd ../shared/bin && pwd):$PATH"
  export PATH
fi
# wrk loads every section; slowhttptest section 11; strace counts syncs in section 12; buildah
# builds the images and containerd (with ctr) runs them in sections 6-12.
need_apt wrk slowhttptest strace buildah containerd
# Flask and waitress run the seed-style baseline.
pip_set bench flask==3.1.2 waitress==3.0.2
build_components
say "building the native baseline"
cargo build --profile bench-native -p spin-visits-native >&2
say "benchmarking"
BENCH_COMMAND="scripts/bench.sh${*:+ $*}" exec "$TOOLS_DIR/bin/python" bench/run.py "$@"
