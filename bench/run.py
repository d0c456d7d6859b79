"""The benchmark: one invocation, one machine, every figure, written to BENCHMARKS.md.

Run through scripts/bench.sh, which installs wrk, Flask and waitress and builds everything.
Each figure is the median of several runs, with min and max. Traffic stays on loopback.

  1. visit path (GET /) at 16 connections: the Spin component on wasmtime serve, the server
     component on wasmtime run, the native baseline, and the seed-style Flask app;
  2. GET /, /healthz and /visits?tail=100 latency as the log grows to a full 100Mi volume;
  3. GET /visits of a 100 MiB log: time, MB/s, and the runtime's peak memory;
  4. each component's size, and time from starting the runtime to the first 200;
  6–8. load on one replica (bench/load.py): 16 to 1 024 connections, idle connections beside
     active ones, and both durability settings, under wasmtime run, runwasi's shim and native.
"""

import argparse
import datetime
import os
import platform
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "target/wasm32-wasip2/release"
SPIN_WASM = RELEASE / "spin_visits_http.wasm"
SERVER_WASM = RELEASE / "spin-visits-server.wasm"
NATIVE = ROOT / "target/bench-native/spin-visits-native"
PYTHON_APP = ROOT / "bench/python/app.py"
WASMTIME = os.environ.get("WASMTIME", "wasmtime")
RECORD = b"2023-11-18 17:54:26.913511+03:00\n"
FULL_VOLUME_LINES = 3_200_000  # 100Mi / 33 bytes
CHECKS = []  # (target, measured, met), filled in by the steps
# Sections 1-7 measure serving, so visits are not synced; section 8 prices the sync.
SERVING_FSYNC = "no"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    """One way of serving the app, started on a fresh port with a given data directory."""

    def __init__(self, name, command):
        self.name, self.command = name, command

    def start(self, data_dir, extra=()):
        port = free_port()
        self.addr = f"127.0.0.1:{port}"
        argv = self.command(self.addr, data_dir) + list(extra)
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        env={**os.environ, "APPEND_FSYNC": SERVING_FSYNC,
                                             "DATA_DIR": str(data_dir),
                                             "LISTEN_ADDR": self.addr, "POD_NAME": "bench-0"})
        self.first_200 = wait_for_200(f"http://{self.addr}/healthz") - self.started_at
        return self

    def peak_memory_kib(self):
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))

    def stop(self):
        self.process.kill()
        self.process.wait()


def wasm_args(data_dir):
    return ["-S", "cli=y", "--dir", f"{data_dir}::/data", "--env", "POD_NAME=bench-0",
            "--env", f"APPEND_FSYNC={SERVING_FSYNC}"]


def spin_target(pooling=True, precompiled=None, cold=False):
    def command(addr, data_dir):
        options = ["-O", "pooling-allocator=y"] if pooling else []
        options += ["-C", "cache=n"] if cold else []
        wasm = [str(SPIN_WASM)]
        if precompiled:
            options += ["--allow-precompiled"]
            wasm = [str(precompiled)]
        return [WASMTIME, "serve", *options, *wasm_args(data_dir), "--addr", addr, *wasm]
    return Target("Spin component (wasmtime serve)", command)


def server_target(precompiled=None, cold=False):
    def command(addr, data_dir):
        options = ["--allow-precompiled"] if precompiled else []
        options += ["-C", "cache=n"] if cold else []
        return [WASMTIME, "run", *options, "-S", "inherit-network=y", "-S", "tcp=y",
                *wasm_args(data_dir), "--env", f"LISTEN_ADDR={addr}",
                str(precompiled or SERVER_WASM)]
    return Target("server component (wasmtime run)", command)


NATIVE_TARGET = Target("native Rust (hyper)", lambda addr, data_dir: [str(NATIVE)])
PYTHON_TARGET = Target("seed app (Flask + waitress)",
                       lambda addr, data_dir: [sys.executable, str(PYTHON_APP)])


def wait_for_200(url, timeout=60):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter()
        except OSError:
            time.sleep(0.0005)
    raise RuntimeError(f"{url} never answered 200")


class WrkRun:
    """One `wrk --latency` run, parsed: requests/s, p50/p99 in ms, requests, socket errors
    (connect, read, write, timeout summed) and non-2xx answers."""

    def __init__(self, url, connections, seconds):
        threads = min(2, connections)
        self.out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
                                   url], check=True, capture_output=True, text=True).stdout
        self.rps = float(re.search(r"Requests/sec:\s+([\d.]+)", self.out).group(1))
        self.p50, self.p99 = latency_ms(self.out, "50%"), latency_ms(self.out, "99%")
        self.requests = int(re.search(r"(\d+) requests in", self.out).group(1))
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", self.out)
        self.socket_errors = sum(map(int, errors.groups())) if errors else 0
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", self.out)
        self.non_2xx = int(non_2xx.group(1)) if non_2xx else 0


def wrk(url, connections, seconds):
    """Requests/s and p50/p99 latency in ms; any non-2xx answer is an error."""
    run = WrkRun(url, connections, seconds)
    if run.non_2xx:
        raise RuntimeError(f"{url}: {run.non_2xx} non-2xx responses\n{run.out}")
    return run.rps, run.p50, run.p99


def latency_ms(out, percentile):
    value, unit = re.search(rf"{re.escape(percentile)}\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def spread(values, fmt="{:,.0f}"):
    """median (min–max)"""
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def prefill(data_dir, lines):
    with open(data_dir / "visits.txt", "wb") as log:
        chunk = RECORD * 100_000
        for _ in range(lines // 100_000):
            log.write(chunk)
        log.write(RECORD * (lines % 100_000))


def visit_path(args, report):
    report.append("## 1. Visit path: `GET /` (appends a line), 16 connections\n")
    report.append(f"`wrk -t2 -c16 -d{args.seconds}s --latency`, {args.runs} runs each, fresh empty log per "
                  "run; median (min–max).\n")
    report.append("| server | requests/s | p50 ms | p99 ms |")
    report.append("|---|---|---|---|")
    medians, p99s = {}, {}
    for target in [spin_target(), server_target(), NATIVE_TARGET, PYTHON_TARGET]:
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


def machine():
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    wasmtime = subprocess.run([WASMTIME, "--version"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}; {wasmtime}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of each visit-path run")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--only", choices=["load"], help="run one step and print its section (nothing written)")
    args = parser.parse_args()
    if args.only == "load":
        import load
        report = []
        load.step(args, report)
        print("\n".join(report))
        for target, measured, met in CHECKS:
            print(f"{'met' if met else 'MISSED'}: {target}: {measured}")
        return

    report = [
        "# Benchmarks\n",
        f"Written by `{os.environ.get('BENCH_COMMAND') or shlex.join(['python3', 'bench/run.py', *sys.argv[1:]])}` on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.\n",
        f"Machine: {machine()}. Load: wrk on the same machine, loopback only.\n",
        "Runtime settings: the Spin component on `wasmtime serve -O pooling-allocator=y` (a fresh instance "
        "per request, the default for WASI 0.2 components); the server component on `wasmtime run` (one "
        "long-lived instance); the native baseline is the crate's own handler behind hyper on a "
        "single-threaded tokio runtime, built with opt-level 3; the seed app is Flask on waitress (4 "
        "threads). Components are built with the release profile (opt-level s, LTO, panic=abort). "
        "`APPEND_FSYNC=no` in sections 1–7 (answer after the write); section 8 measures both policies.\n",
    ]
    for step in (visit_path, log_growth, read_whole_log, size_and_start):
        print(step.__name__, flush=True)
        step(args, report)
    # Spin's own HTTP trigger beside wasmtime serve and native (issue 11): bench/spin_trigger.py.
    import spin_trigger
    spin_trigger.step(args, report)
    # Load on one replica (connections, idle connections, durability): bench/load.py.
    import load
    load.step(args, report)
    report.append("## Targets\n")
    report.append("| target | measured | met |")
    report.append("|---|---|---|")
    for target, measured, met in CHECKS:
        report.append(f"| {target} | {measured} | {'yes' if met else '**no**'} |")
    report.append("")
    report.append((ROOT / "bench" / "notes.md").read_text())
    Path(args.out).write_text("\n".join(report))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    # The step modules import this one as `run`: let them share its CHECKS.
    sys.modules.setdefault("run", sys.modules["__main__"])
    main()
