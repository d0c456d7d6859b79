"""What every benchmark section shares: where the artefacts are, how a server is started and
loaded, how figures are summarised, and how a section is written into BENCHMARKS.md.

The sections (run.py's own, visit_path.py, spin_trigger.py, load.py, segments.py, fair.py,
spin_shim.py) import this module and nothing of each other's, except the helpers spin_probe.py
takes from spin_trigger.py and the node runtime (node.py, load.py's limits) that segments.py and
spin_shim.py share with load.py; run.py imports the sections and drives them.
"""

import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELEASE = ROOT / "target/wasm32-wasip2/release"
SPIN_WASM = RELEASE / "spin_visits_http.wasm"
SERVER_WASM = RELEASE / "spin-visits-server.wasm"
# bench/minimal, its own workspace, built into the main target directory (visit_path.py).
MINIMAL_WASM = RELEASE / "spin_visits_minimal.wasm"
NATIVE = ROOT / "target/bench-native/spin-visits-native"
PYTHON_APP = ROOT / "bench/python/app.py"
WASMTIME = os.environ.get("WASMTIME", "wasmtime")
RECORD = b"2023-11-18 17:54:26.913511+03:00\n"
FULL_VOLUME_LINES = 3_200_000  # 100Mi / 33 bytes
CHECKS = []  # (target, measured, met), filled in by the sections, reported by run.py
# Sections 1-7 measure serving, so visits are not synced; section 8 prices the sync.
SERVING_FSYNC = "no"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def without_backtraces():
    """A developer's RUST_BACKTRACE=1 makes the hosts capture a backtrace for every error they
    build, requests included (about a fifth more CPU per request on Spin's trigger), so every
    server runs without it, as a deployed one would."""
    for name in ("RUST_BACKTRACE", "RUST_LIB_BACKTRACE"):
        os.environ.pop(name, None)


class Target:
    """One way of serving the app, started on a fresh port with a given data directory."""

    def __init__(self, name, command, fsync=SERVING_FSYNC):
        self.name, self.command, self.fsync = name, command, fsync

    def start(self, data_dir, extra=()):
        port = free_port()
        self.addr = f"127.0.0.1:{port}"
        argv = self.command(self.addr, data_dir) + list(extra)
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        env={**os.environ, "APPEND_FSYNC": self.fsync,
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


def wasm_args(data_dir, fsync=SERVING_FSYNC):
    return ["-S", "cli=y", "--dir", f"{data_dir}::/data", "--env", "POD_NAME=bench-0",
            "--env", f"APPEND_FSYNC={fsync}"]


def serve_command(wasm, pooling=True, precompiled=None, cold=False, fsync=SERVING_FSYNC):
    """`wasmtime serve` of a wasi-http component, as the Spin component's rows run it."""
    def command(addr, data_dir):
        options = ["-O", "pooling-allocator=y"] if pooling else []
        options += ["-C", "cache=n"] if cold else []
        files = [str(wasm)]
        if precompiled:
            options += ["--allow-precompiled"]
            files = [str(precompiled)]
        return [WASMTIME, "serve", *options, *wasm_args(data_dir, fsync), "--addr", addr, *files]
    return command


def spin_target(pooling=True, precompiled=None, cold=False, fsync=SERVING_FSYNC):
    return Target("Spin component (wasmtime serve)",
                  serve_command(SPIN_WASM, pooling, precompiled, cold, fsync), fsync)


def minimal_target(fsync=SERVING_FSYNC):
    """bench/minimal: the least a spin-sdk 5.2 component does for a visit, on the same host."""
    return Target("minimal spin-sdk 5.2 component (wasmtime serve)",
                  serve_command(MINIMAL_WASM, fsync=fsync), fsync)


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


def cpu_seconds(pid):
    """utime + stime of the whole process (every thread), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def spread(values, fmt="{:,.0f}"):
    """median (min–max)"""
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def prefill(data_dir, lines):
    with open(data_dir / "visits.txt", "wb") as log:
        chunk = RECORD * 100_000
        for _ in range(lines // 100_000):
            log.write(chunk)
        log.write(RECORD * (lines % 100_000))


def versions():
    """What produced the figures: this checkout, the compiler and the node shims."""
    def first_line(*command):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30)
            return (done.stdout or done.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "not found"
    commit = first_line("git", "-C", str(ROOT), "describe", "--always", "--dirty")
    try:
        shim = subprocess.run(["containerd-shim-wasmtime-v1", "-v"], capture_output=True, text=True,
                              timeout=30).stdout
        shim = " ".join(line.strip() for line in shim.splitlines()[1:] if line.strip())
    except OSError:
        shim = "not found"
    return f"spin-visits {commit}; {first_line('rustc', '-V')}; containerd-shim-wasmtime-v1 ({shim})"


def machine():
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    wasmtime = subprocess.run([WASMTIME, "--version"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}; {wasmtime}"


