"""Section 1, the visit path: `GET /` at 16 connections on every server, and the Spin
component against bench/minimal (a spin-sdk 5.2 component that only appends the record and
answers the page) on the same `wasmtime serve` settings, in alternating rounds, with
APPEND_FSYNC=no and =always.

Run by bench/run.py as its first step, or alone, which rewrites only this section, its rows of
the targets table and the notes in BENCHMARKS.md:

    source scripts/tools.sh && cargo build --release --target wasm32-wasip2 \\
        -p spin-visits-http -p spin-visits-server \\
      && cargo build --profile bench-native -p spin-visits-native \\
      && python3 bench/visit_path.py --seconds 10 --runs 3

(it builds bench/minimal itself; the seed app needs Flask and waitress, as scripts/bench.sh
installs them). To weigh a change to the visit path, put an earlier build of the Spin component
in the same rounds and print them, writing nothing:

    python3 bench/visit_path.py --compare-only --runs 5 --also /tmp/before.wasm
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (CHECKS, NATIVE_TARGET, PYTHON_TARGET, ROOT, Target, WrkRun, cpu_seconds, machine,
                    minimal_target, serve_command, server_target, spin_target, spread,
                    without_backtraces, wrk)

HEADING = "## 1. Visit path: `GET /` (appends a line), 16 connections"
# The Spin component's floor: what a visit costs any component instantiated per request.
FLOOR_TARGET = 0.95


def build_minimal():
    """bench/minimal is its own workspace (the main build never compiles it); its component
    lands beside the others in target/wasm32-wasip2/release."""
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip2",
                    "--manifest-path", str(ROOT / "bench/minimal/Cargo.toml"),
                    "--target-dir", str(ROOT / "target")], check=True)


def one_run(target, seconds):
    """requests/s, p50 ms, p99 ms and the server's CPU µs per request of one run on a fresh
    empty log."""
    with tempfile.TemporaryDirectory() as data_dir:
        target.start(Path(data_dir))
        try:
            before = cpu_seconds(target.process.pid)
            run = WrkRun(f"http://{target.addr}/", 16, seconds)
            cpu = cpu_seconds(target.process.pid) - before
        finally:
            target.stop()
    if run.non_2xx or run.socket_errors:
        raise RuntimeError(f"{target.name}: errors under load\n{run.out}")
    return run.rps, run.p50, run.p99, cpu / run.requests * 1e6


def every_server(args, report):
    report.append(f"`wrk -t2 -c16 -d{args.seconds}s --latency`, {args.runs} runs each, fresh empty log per "
                  "run; median (min–max).\n")
    report.append("| server | requests/s | p50 ms | p99 ms |")
    report.append("|---|---|---|---|")
    medians, p99s = {}, {}
    for target in [spin_target(), minimal_target(), server_target(), NATIVE_TARGET, PYTHON_TARGET]:
        runs = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as data_dir:
                target.start(Path(data_dir))
                try:
                    runs.append(wrk(f"http://{target.addr}/", 16, args.seconds))
                finally:
                    target.stop()
        rps, p50, p99 = zip(*runs)
        medians[target.name] = statistics.median(rps)
        p99s[target.name] = statistics.median(p99)
        report.append(f"| {target.name} | {spread(rps)} | {spread(p50, '{:.2f}')} | {spread(p99, '{:.2f}')} |")
        print(f"  {target.name}: {statistics.median(rps):,.0f} req/s", flush=True)
    native, python = medians[NATIVE_TARGET.name], medians[PYTHON_TARGET.name]
    report.append("\n| component | × native | × seed app |")
    report.append("|---|---|---|")
    for name in (spin_target().name, server_target().name):
        report.append(f"| {name} | {medians[name] / native:.2f} | {medians[name] / python:.1f} |")
        CHECKS.append((f"{name}: ≥ 0.5× native", f"{medians[name] / native:.2f}×", medians[name] / native >= 0.5))
        CHECKS.append((f"{name}: ≥ 10× the seed app", f"{medians[name] / python:.1f}×", medians[name] / python >= 10))
        CHECKS.append((f"{name}: p99 ≤ 2 ms at 16 connections", f"{p99s[name]:.2f} ms", p99s[name] <= 2))
    report.append("")


def against_minimal(args, report):
    """The Spin component and the minimal one in turn, round after round, so a slow spell of
    the machine falls on both runs of a round; the figure is the median of the rounds' ratios.
    Other builds of the Spin component (`--also`, e.g. an earlier commit's) join the rounds."""
    report.append(f"The Spin component against the minimal spin-sdk 5.2 component (`bench/minimal`: "
                  "one handler that appends the same 33-byte record to `DATA_DIR/visits.txt` in one "
                  "write, synced with `always`, counts by the file's size and answers the same page), "
                  f"both on `wasmtime serve -O pooling-allocator=y`, each policy in {args.runs} "
                  f"alternating rounds of `wrk -t2 -c16 -d{args.seconds}s` on `/`, fresh empty log per "
                  "run; median (min–max). CPU is the wasmtime process's user + system time over the "
                  "run, divided by the visits served. × minimal is each round's requests/s over the "
                  "minimal component's in the same round: median (min–max) of the rounds.\n")
    report.append("| APPEND_FSYNC | server | requests/s | p99 ms | CPU µs per visit | × minimal |")
    report.append("|---|---|---|---|---|---|")
    for fsync in ("no", "always"):
        others = [Target(f"Spin component, {wasm.name} (wasmtime serve)", serve_command(wasm, fsync=fsync), fsync)
                  for wasm in getattr(args, "also", [])]
        targets = (spin_target(fsync=fsync), *others, minimal_target(fsync=fsync))
        runs = {target.name: [] for target in targets}
        for _ in range(args.runs):
            for target in targets:
                runs[target.name].append(one_run(target, args.seconds))
        spin, minimal = targets[0].name, targets[-1].name
        ratios = {name: [run[0] / base[0] for run, base in zip(results, runs[minimal])]
                  for name, results in runs.items()}
        for name, results in runs.items():
            rps, _, p99, cpu = zip(*results)
            report.append(f"| `{fsync}` | {name} | {spread(rps)} | {spread(p99, '{:.2f}')} | "
                          f"{spread(cpu)} | {spread(ratios[name], '{:.2f}')} |")
            print(f"  APPEND_FSYNC={fsync}: {name}: {statistics.median(rps):,.0f} req/s, "
                  f"{statistics.median(ratios[name]):.2f}× minimal", flush=True)
        ratio = statistics.median(ratios[spin])
        CHECKS.append((f"{spin}: ≥ {FLOOR_TARGET}× the minimal spin-sdk component, APPEND_FSYNC={fsync}",
                       f"{ratio:.2f}×", ratio >= FLOOR_TARGET))
    report.append("")


def step(args, report):
    """Appends this section to `report` (a list of markdown lines)."""
    print("visit_path", flush=True)
    without_backtraces()
    build_minimal()
    report.append(f"{HEADING}\n")
    every_server(args, report)
    against_minimal(args, report)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--runs", type=int, default=3, help="runs (rounds) per figure")
    parser.add_argument("--also", action="append", type=Path, default=[], metavar="WASM",
                        help="another build of the Spin component for the alternating rounds")
    parser.add_argument("--compare-only", action="store_true",
                        help="run only the rounds against the minimal component and print them")
    args = parser.parse_args()
    if args.compare_only:
        without_backtraces()
        build_minimal()
        report = []
        against_minimal(args, report)
        print("\n".join(report))
        return
    report = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()[0]  # other work on the machine shows up as spread in the figures
    step(args, report)
    command = f"python3 bench/visit_path.py --seconds {args.seconds} --runs {args.runs}"
    report.insert(1, f"Measured on its own by `{command}` on {started}, after the rest of this file. "
                     f"Machine: {machine()}; load average {load:.1f} when it started. Compare within "
                     "this section: every row here comes from this one run.\n")
    # Printed, not written into BENCHMARKS.md, which holds one whole run of scripts/bench.sh.
    print("\n".join(report))
    for target, measured, met in CHECKS:
        print(f"{'met' if met else 'MISSED'}: {target}: {measured}")


if __name__ == "__main__":
    sys.exit(main())
