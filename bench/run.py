"""The benchmark: one invocation, one machine, every figure, written to BENCHMARKS.md.

Run through scripts/bench.sh, which installs wrk, slowhttptest, strace, buildah, containerd,
Flask and waitress and builds everything. Run as root (containerd, tmpfs claims, cgroups).
Each figure is the median of several runs, with min and max. Traffic stays on loopback.

  1. visit path (GET /) at 16 connections (bench/visit_path.py): the Spin component and a
     minimal spin-sdk component on wasmtime serve, the server component on wasmtime run, the
     native baseline, and the seed-style Flask app; then the Spin component against the
     minimal one in alternating rounds, unsynced and synced;
  2. GET /, /healthz and /visits?tail=100 latency as the log grows to a full 100Mi volume;
  3. GET /visits of a 100 MiB log: time, MB/s, and the runtime's peak memory;
  4. each component's size, and time from starting the runtime to the first 200;
  5. the Spin component under Spin's own HTTP trigger (bench/spin_trigger.py);
  6–9. load on one replica (bench/load.py): 16 to 1 024 connections, idle connections beside
     active ones, both durability settings, and the replica as deployed (the manifest's limits
     as a cgroup, fd 1024:1024), under wasmtime run, runwasi's shim (release and main) and native;
 10. sealed segments (bench/segments.py): visits on a 4 MiB claim before it is full, the rate
     with sealing on and off, retention's exact counts under wasmtime run and the release shim,
     and streaming sealed segments;
 11. fair at the connection cap (bench/fair.py, this build under wasmtime run at fd 1024:1024):
     newcomers behind 1 000 idle connections, 1 024 and 1 100 closed-loop connections, and
     slowhttptest's slowloris and slow read;
 12. the Spin component's SQLite build on containerd-shim-spin beside the server component on
     runwasi's release shim, as shipped (bench/spin_shim.py).

A step of 10–12 that fails (a missing shim, say) leaves its section saying so; the run goes on.
`--only STEP` runs one step and prints its section and its targets instead of writing the file.
"""

import argparse
import datetime
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from pathlib import Path

import fair
import load
import segments
import spin_shim
import spin_trigger
import visit_path
from common import (CHECKS, FULL_VOLUME_LINES, ROOT, SERVER_WASM, SPIN_WASM, WASMTIME, machine,
                    prefill, server_target, spin_target, spread, versions, wrk)


def log_growth(args, report):
    report.append("## 2. Cost as the log grows\n")
    report.append(f"p50 latency in ms at 1 connection (`wrk -t1 -c1 -d2s --latency`), median of {args.runs} runs, "
                  "log pre-filled with N lines; 3 200 000 lines is a full 100Mi volume. Ratio: largest log / "
                  "empty log (with no log at all, reads skip the file entirely).\n")
    sizes = [0, 10_000, 1_000_000, FULL_VOLUME_LINES]
    routes = ["/", "/healthz", "/visits?tail=100"]
    report.append("| component | route | " + " | ".join(f"{n:,} lines" for n in sizes) + " | ratio |")
    report.append("|---|---|" + "---|" * len(sizes) + "---|")
    for make in (spin_target, server_target):
        rows = {route: [] for route in routes}
        for lines in sizes:
            with tempfile.TemporaryDirectory() as data_dir:
                prefill(Path(data_dir), lines)
                target = make().start(Path(data_dir))
                try:
                    for route in routes:
                        p50s = [wrk(f"http://{target.addr}{route}", 1, 2)[1] for _ in range(args.runs)]
                        rows[route].append(statistics.median(p50s))
                finally:
                    target.stop()
        for route in routes:
            values = rows[route]
            cells = " | ".join(f"{v:.3f}" for v in values)
            ratio = values[-1] / values[0]
            report.append(f"| {make().name} | `{route}` | {cells} | {ratio:.2f} |")
            CHECKS.append((f"{make().name}: `{route}` flat (≤ 1.2×) to a full volume", f"{ratio:.2f}×", ratio <= 1.2))
        print(f"  {make().name}: done", flush=True)
    report.append("")


def read_whole_log(args, report):
    report.append("## 3. Reading the whole log: `GET /visits` of a 100 MiB log\n")
    report.append("3 200 000 lines (105.6 MB). Each run starts a fresh runtime; peak memory is the runtime "
                  "process's VmHWM after the read, and its growth over the VmHWM before it.\n")
    report.append("| component | seconds | MB/s | runtime peak RSS MiB | growth during the read MiB |")
    report.append("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as data_dir:
        prefill(Path(data_dir), FULL_VOLUME_LINES)
        size = (Path(data_dir) / "visits.txt").stat().st_size
        for make in (spin_target, server_target):
            seconds, peaks, growths = [], [], []
            for _ in range(args.runs):
                target = make().start(Path(data_dir))
                try:
                    before = target.peak_memory_kib()
                    start = time.perf_counter()
                    with urllib.request.urlopen(f"http://{target.addr}/visits", timeout=600) as response:
                        received = 0
                        while chunk := response.read(1 << 20):
                            received += len(chunk)
                    seconds.append(time.perf_counter() - start)
                    assert received == size, (received, size)
                    peak = target.peak_memory_kib()
                    peaks.append(peak / 1024)
                    growths.append((peak - before) / 1024)
                finally:
                    target.stop()
            rates = [size / s / 1e6 for s in seconds]
            report.append(f"| {make().name} | {spread(seconds, '{:.2f}')} | {spread(rates)} | "
                          f"{spread(peaks, '{:.0f}')} | {spread(growths, '{:.1f}')} |")
            print(f"  {make().name}: {statistics.median(rates):,.0f} MB/s", flush=True)
            rate, growth = statistics.median(rates), max(growths)
            CHECKS.append((f"{make().name}: `/visits` of 100 MiB ≥ 200 MB/s", f"{rate:,.0f} MB/s", rate >= 200))
            CHECKS.append((f"{make().name}: memory growth during the read ≤ 16 MiB", f"{growth:.1f} MiB", growth <= 16))
    report.append("")


def size_and_start(args, report):
    report.append("## 4. Size and start\n")
    report.append("Time from starting the runtime to the first 200 on `/healthz`, median of 5 (min–max); "
                  "compiled at start (Cranelift) and precompiled with `wasmtime compile` (what runwasi caches "
                  "after the first pull).\n")
    report.append("| component | bytes | first 200, compiled at start (ms) | first 200, precompiled (ms) |")
    report.append("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for wasm, make in ((SPIN_WASM, spin_target), (SERVER_WASM, server_target)):
            cwasm = Path(scratch) / (wasm.stem + ".cwasm")
            subprocess.run([WASMTIME, "compile", "-o", str(cwasm), str(wasm)], check=True)
            cells = []
            for precompiled in (None, cwasm):
                starts = []
                for _ in range(5):
                    with tempfile.TemporaryDirectory() as data_dir:
                        target = make(precompiled=precompiled, cold=precompiled is None)
                        target.start(Path(data_dir))
                        starts.append(target.first_200 * 1000)
                        target.stop()
                cells.append(spread(starts, "{:.1f}"))
                CHECKS.append((f"{make().name}: first 200 ≤ 20 ms ({'precompiled' if precompiled else 'compiled at start'})",
                               f"{statistics.median(starts):.1f} ms", statistics.median(starts) <= 20))
            size = wasm.stat().st_size
            report.append(f"| {make().name} | {size:,} | {cells[0]} | {cells[1]} |")
            CHECKS.append((f"{make().name}: size ≤ 150 KiB", f"{size / 1024:.0f} KiB", size <= 150 * 1024))
    report.append("")


# Steps that run their own runtimes (containerd, tmpfs, slowhttptest): one failing leaves its
# section saying why, so a long run still ends with a whole file.
LATER_STEPS = {"segments": ("10. Sealed segments", segments.step),
               "fair": ("11. Fair at the cap", fair.step),
               "spin-shim": ("12. The Spin component on containerd-shim-spin", spin_shim.step)}


def guarded(name, args, report):
    heading, step = LATER_STEPS[name]
    at, checks = len(report), len(CHECKS)
    try:
        step(args, report)
    except (Exception, SystemExit) as error:  # noqa: BLE001 - reported in the file, not hidden
        traceback.print_exc()
        del report[at:]
        del CHECKS[checks:]
        report.append(f"## {heading}\n")
        report.append(f"Not measured in this run: the step failed ({type(error).__name__}: {error}).\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of each visit-path run")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--only", choices=["load", *LATER_STEPS], help="run one step and print its section")
    parser.add_argument("--sections", default="6789",
                        help="with --only load: which load sections (6 connections, 7 idle, 8 durability, "
                             "9 as deployed), e.g. 89")
    args = parser.parse_args()
    if args.only:
        report = []
        if args.only == "load":
            load.step(args, report, tuple(args.sections))
        else:
            LATER_STEPS[args.only][1](args, report)
        print("\n".join(report))
        for target, measured, met in CHECKS:
            print(f"{'met' if met else 'MISSED'}: {target}: {measured}")
        return

    report = [
        "# Benchmarks\n",
        f"Written by `{os.environ.get('BENCH_COMMAND') or shlex.join(['python3', 'bench/run.py', *sys.argv[1:]])}` on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.\n",
        f"Machine: {machine()}. Load: wrk on the same machine, loopback only. The machine may be shared "
        f"with other work (builds, tests, other benchmarks), so read ratios within a table before absolute "
        f"figures; load average {os.getloadavg()[0]:.1f} at the start.\n",
        f"Versions: {versions()}.\n",
        "Every figure below comes from this one run. What they mean, where targets are missed and "
        "why: [bench/notes.md](bench/notes.md).\n",
        "Runtime settings: the Spin component on `wasmtime serve -O pooling-allocator=y` (a fresh instance "
        "per request, the default for WASI 0.2 components); the server component on `wasmtime run` (one "
        "long-lived instance); the native baseline is the crate's own handler behind hyper on a "
        "single-threaded tokio runtime, built with opt-level 3; the seed app is Flask on waitress (4 "
        "threads). Components are built with the release profile (opt-level s, LTO, panic=abort). "
        "`APPEND_FSYNC=no` in sections 1–7 and 11 (answer after the write); sections 8 and 12 measure both "
        "policies, section 10 says which it uses.\n",
    ]
    run_started = time.perf_counter()
    # The visit path on every server, and against the minimal component: bench/visit_path.py.
    visit_path.step(args, report)
    print(f"  visit_path: {time.perf_counter() - run_started:.0f} s", flush=True)
    for step in (log_growth, read_whole_log, size_and_start):
        print(step.__name__, flush=True)
        started = time.perf_counter()
        step(args, report)
        print(f"  {step.__name__}: {time.perf_counter() - started:.0f} s", flush=True)
    # Spin's own HTTP trigger beside wasmtime serve and native (issue 11): bench/spin_trigger.py.
    started = time.perf_counter()
    spin_trigger.step(args, report)
    print(f"  spin_trigger: {time.perf_counter() - started:.0f} s", flush=True)
    # Load on one replica (connections, idle connections, durability): bench/load.py.
    load.step(args, report)
    for name in LATER_STEPS:
        started = time.perf_counter()
        guarded(name, args, report)
        print(f"  {name}: {time.perf_counter() - started:.0f} s", flush=True)
    # The header's machine line gains the end of the run: how loaded, how long.
    report[2] = (report[2].rstrip("\n").rstrip(".") + f", {os.getloadavg()[0]:.1f} at the end; the run took "
                 f"{(time.perf_counter() - run_started) / 60:.0f} minutes.\n")
    report.append("## Targets\n")
    report.append("| target | measured | met |")
    report.append("|---|---|---|")
    for target, measured, met in CHECKS:
        report.append(f"| {target} | {measured} | {'yes' if met else '**no**'} |")
    report.append("")
    Path(args.out).write_text("\n".join(report))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
