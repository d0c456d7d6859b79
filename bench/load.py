"""Load on one replica: connection scaling, idle connections and the durability policy.

Run by bench/run.py after its own steps. Each figure comes from a fresh server on an empty log
and is the median of --runs runs. Targets: the server component under `wasmtime run`, the same
component under runwasi's wasmtime shim (the node runtime; bench/node.py, used when the shim is
on PATH) and the native baseline, each measured in the same run so ratios are fair.
"""

import resource
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import node
from common import CHECKS, NATIVE, SERVER_WASM, WASMTIME, WrkRun, free_port, wait_for_200

CONNECTIONS = (16, 64, 256, 1024)
IDLE = (0, 100, 1000)
ACTIVE_BESIDE_IDLE = 4
SECONDS = 5


class Process:
    """A replica as a local process: the server component on `wasmtime run`, or native."""

    def __init__(self, name, argv):
        self.name, self.argv = name, argv

    def start(self, data_dir, env):
        self.addr = f"127.0.0.1:{free_port()}"
        self.process = subprocess.Popen(self.argv(self.addr, data_dir, env), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL,
                                        env={"DATA_DIR": str(data_dir), "LISTEN_ADDR": self.addr,
                                             "POD_NAME": "bench-0", **env})
        wait_for_200(f"http://{self.addr}/healthz")

    def stop(self):
        self.process.kill()
        self.process.wait()


def wasmtime_run(addr, data_dir, env):
    envs = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
    return [WASMTIME, "run", "-S", "inherit-network=y", "-S", "tcp=y", "-S", "cli=y",
            "--dir", f"{data_dir}::/data", "--env", "POD_NAME=bench-0", "--env", f"LISTEN_ADDR={addr}",
            *envs, str(SERVER_WASM)]


def targets():
    found = [Process("server component (wasmtime run)", wasmtime_run)]
    shim = node.NodeRuntime.find()
    if shim:
        found.append(shim)
    found.append(Process("native Rust (hyper)", lambda addr, data_dir, env: [str(NATIVE)]))
    return found


def wrk(url, connections, seconds):
    """requests/s, p99 ms, and socket errors plus non-2xx answers of one wrk run."""
    run = WrkRun(url, connections, seconds)
    return run.rps, run.p99, run.socket_errors + run.non_2xx


def measure(target, path, connections, args, env=None, idle=0):
    """Median requests/s, median p99, total errors over `args.runs` fresh replicas, and the
    slowest answer to `/metrics` right after a run (a replica must not stay busy after load)."""
    runs, after = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as data_dir:
            target.start(Path(data_dir), env or {})
            try:
                with IdleConnections(target.addr, idle):
                    runs.append(wrk(f"http://{target.addr}{path}", connections, SECONDS))
                started = time.perf_counter()
                with urllib.request.urlopen(f"http://{target.addr}/metrics", timeout=10) as response:
                    assert response.status == 200
                after.append((time.perf_counter() - started) * 1000)
            finally:
                target.stop()
    rps, p99, errors = zip(*runs)
    return statistics.median(rps), statistics.median(p99), sum(errors), max(after)


class IdleConnections:
    """`count` keep-alive connections that each made one request and then stay silent."""

    def __init__(self, addr, count):
        self.addr, self.count, self.sockets = addr, count, []

    def __enter__(self):
        host, port = self.addr.split(":")
        for _ in range(self.count):
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
            answer = b""
            while not answer.endswith(b"ok\n"):
                answer += sock.recv(4096)
            self.sockets.append(sock)
        return self

    def __exit__(self, *_):
        for sock in self.sockets:
            sock.close()


def scaling(args, report):
    report.append("## 6. Connections: one replica from 16 to 1 024 connections\n")
    report.append(f"`wrk -t2 -cN -d{SECONDS}s --latency`, {args.runs} run(s) each on a fresh replica and "
                  "empty log; requests/s median, p99 ms median, socket errors and timeouts summed. "
                  "`APPEND_FSYNC=no` here, so the figures show the serving path; section 8 prices the sync. "
                  "At 1 024 connections, the slowest answer to `GET /metrics` right after a run.\n")
    found = targets()
    if node.missing:
        report.append(f"The node runtime is left out of this run: {node.missing}.\n")
    report.append("| route | connections | " + " | ".join(t.name for t in found) + " | server ÷ native |")
    report.append("|---|---|" + "---|" * len(found) + "---|")
    results = {}
    for path in ("/", "/healthz"):
        for connections in CONNECTIONS:
            cells = []
            for target in found:
                rps, p99, errors, after = measure(target, path, connections, args, {"APPEND_FSYNC": "no"})
                results[(target.name, path, connections)] = (rps, p99, errors)
                cells.append(f"{rps:,.0f} · p99 {p99:.1f} ms" + (f" · **{errors} errors**" if errors else "")
                             + (f" · `/metrics` after: {after:.0f} ms" if connections == CONNECTIONS[-1] else ""))
            server = results[(found[0].name, path, connections)][0]
            native = results[(found[-1].name, path, connections)][0]
            report.append(f"| `{path}` | {connections:,} | " + " | ".join(cells) + f" | {server / native:.2f} |")
            print(f"  {path} at {connections}: " + ", ".join(f"{c}" for c in cells), flush=True)
    for target in found[:-1]:
        name = target.name
        native = found[-1].name
        ratio = results[(name, "/", 16)][0] / results[(native, "/", 16)][0]
        CHECKS.append((f"{name}: `/` at 16 connections ≥ 0.5× native", f"{ratio:.2f}×", ratio >= 0.5))
        p99 = results[(name, "/", 16)][1]
        CHECKS.append((f"{name}: `/` p99 ≤ 2 ms at 16 connections", f"{p99:.2f} ms", p99 <= 2))
        ratio = results[(name, "/", 256)][0] / results[(native, "/", 256)][0]
        CHECKS.append((f"{name}: `/` at 256 connections ≥ 1.0× native", f"{ratio:.2f}×", ratio >= 1.0))
        for path in ("/", "/healthz"):
            base = results[(name, path, 16)][0]
            for connections in (256, 1024):
                rps, p99, errors = results[(name, path, connections)]
                CHECKS.append((f"{name}: `{path}` at {connections:,} connections ≥ 0.8× its 16-connection rate",
                               f"{rps / base:.2f}×", rps / base >= 0.8))
                CHECKS.append((f"{name}: `{path}` at {connections:,} connections p99 ≤ 50 ms, no errors",
                               f"{p99:.1f} ms, {errors} errors", p99 <= 50 and errors == 0))
    report.append("")


def idle(args, report):
    report.append(f"## 7. Idle connections beside {ACTIVE_BESIDE_IDLE} active ones\n")
    report.append(f"N keep-alive connections that each made one request and stay open, then `wrk -t2 "
                  f"-c{ACTIVE_BESIDE_IDLE} -d{SECONDS}s` on `/healthz`; requests/s median of {args.runs} run(s), "
                  "and the active connections' rate with N idle ones ÷ their rate alone.\n")
    found = targets()
    report.append("| server | " + " | ".join(f"{n:,} idle" for n in IDLE) + f" | × at {IDLE[-1]:,} idle |")
    report.append("|---|" + "---|" * len(IDLE) + "---|")
    for target in found:
        rates = [measure(target, "/healthz", ACTIVE_BESIDE_IDLE, args, idle=n)[0] for n in IDLE]
        kept = rates[-1] / rates[0]
        report.append(f"| {target.name} | " + " | ".join(f"{r:,.0f}" for r in rates) + f" | {kept:.2f} |")
        print(f"  {target.name}: " + ", ".join(f"{r:,.0f}" for r in rates), flush=True)
        if target is not found[-1]:
            CHECKS.append((f"{target.name}: {IDLE[-1]:,} idle connections cost the active ones ≤ 20%",
                           f"{1 - kept:.0%}", kept >= 0.8))
    report.append("")


def durability(args, report):
    report.append("## 8. Durability: `APPEND_FSYNC=no` against `always`\n")
    report.append(f"`GET /` with `wrk -t2 -cN -d{SECONDS}s --latency`, {args.runs} run(s) each. The server "
                  "component commits the visits of one reactor round in one write and, with `always`, one "
                  "`sync-data`; the native baseline appends (and syncs) once per visit.\n")
    found = targets()
    report.append("| server | APPEND_FSYNC | 16 connections | 256 connections |")
    report.append("|---|---|---|---|")
    for target in found:
        for policy in ("no", "always"):
            cells = []
            for connections in (16, 256):
                rps, p99, errors, _ = measure(target, "/", connections, args, {"APPEND_FSYNC": policy})
                cells.append(f"{rps:,.0f}/s · p99 {p99:.1f} ms" + (f" · **{errors} errors**" if errors else ""))
            report.append(f"| {target.name} | `{policy}` | " + " | ".join(cells) + " |")
            print(f"  {target.name} APPEND_FSYNC={policy}: " + ", ".join(cells), flush=True)
    report.append("")


def step(args, report):
    # 1 024 connections for wrk, 1 000 idle sockets here, and the replica's own.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    started = time.perf_counter()
    for part in (scaling, idle, durability):
        print(part.__name__, flush=True)
        part(args, report)
    print(f"  load: {time.perf_counter() - started:.0f} s", flush=True)
