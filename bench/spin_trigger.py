"""The Spin component under Spin's own HTTP trigger, beside `wasmtime serve` and the native
baseline, in one run: requests/s and latency at 16 and 64 connections on `/` and `/healthz`,
and what one request costs each host (CPU time per request, latency of a lone request).

Spin's trigger is spin-up-lite (Spin 3.6.3's loader and HTTP trigger, as `spin up` and
containerd-shim-spin run them; ../shared/bin/README.md), serving a copy of the repo's
spin.toml with its own port, from the copy's directory (direct mounts resolve against it).

Run by bench/run.py as its last step, or alone, which rewrites only this section (and the
notes) of BENCHMARKS.md:

    source scripts/tools.sh && cargo build --release --target wasm32-wasip2 -p spin-visits-http \\
      && cargo build --profile bench-native -p spin-visits-native \\
      && python3 bench/spin_trigger.py --seconds 5 --runs 3
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import tomllib
from pathlib import Path

from common import (NATIVE_TARGET, ROOT, WrkRun, cpu_seconds, free_port, machine, spin_target,
                    spread, wait_for_200, without_backtraces)

HEADING = "## 5. The Spin component under Spin's HTTP trigger"


def find_spin_up_lite():
    beside = ROOT.parent / "shared" / "bin" / "spin-up-lite"
    return (os.environ.get("SPIN_UP_LITE") or shutil.which("spin-up-lite")
            or (str(beside) if beside.exists() else None))


class SpinTrigger:
    """spin-up-lite on a fresh copy of the app (its own port, an empty data/) per start."""

    def __init__(self, program, env=None, name="Spin component (Spin 3.6.3 trigger)"):
        self.program, self.env, self.name = program, env or {}, name

    def start(self, _data_dir=None):
        self.scratch = tempfile.TemporaryDirectory()
        app = Path(self.scratch.name)
        port = free_port()
        self.addr = f"127.0.0.1:{port}"
        text = (ROOT / "spin.toml").read_text()
        source = tomllib.loads(text)["component"]["visits"]["source"]
        # Unsynced, like the other rows (run.py's SERVING_FSYNC).
        text = text.replace('APPEND_FSYNC = "always"', 'APPEND_FSYNC = "no"')
        (app / "spin.toml").write_text(text.replace("127.0.0.1:3000", self.addr))
        (app / source).parent.mkdir(parents=True)
        shutil.copy(ROOT / source, app / source)
        (app / "data").mkdir()
        self.process = subprocess.Popen(
            [self.program, "./spin.toml", "--listen", self.addr, "--allow-transient-write"],
            cwd=app, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": str(app), **self.env})
        wait_for_200(f"http://{self.addr}/healthz")
        return self

    def stop(self):
        self.process.kill()
        self.process.wait()
        self.scratch.cleanup()


class Fresh:
    """A common.Target with a fresh empty data directory per start."""

    def __init__(self, target, name=None):
        self.target, self.name = target, name or target.name

    def start(self):
        self.scratch = tempfile.TemporaryDirectory()
        self.target.start(Path(self.scratch.name))
        self.addr, self.process = self.target.addr, self.target.process
        return self

    def stop(self):
        self.target.stop()
        self.scratch.cleanup()


def measure(server, url, connections, seconds):
    """requests/s, p50 ms, p99 ms and the server's CPU µs per request for one wrk run."""
    before = cpu_seconds(server.process.pid)
    run = WrkRun(url, connections, seconds)
    cpu = cpu_seconds(server.process.pid) - before
    if run.non_2xx:
        raise RuntimeError(f"{url}: non-2xx answers under load\n{run.out}")
    if run.socket_errors:
        print(f"  {url}: {re.search(r'Socket errors.*', run.out).group(0)}", flush=True)
    return run.rps, run.p50, run.p99, cpu / run.requests * 1e6


def runs_of(make, path, connections, args):
    results = []
    for _ in range(args.runs):
        server = make().start()
        try:
            results.append(measure(server, f"http://{server.addr}{path}", connections, args.seconds))
        finally:
            server.stop()
    return list(zip(*results))


def step(args, report):
    """Appends this section to `report` (a list of markdown lines)."""
    print("spin_trigger", flush=True)
    # 5 s runs at most: 54 wrk runs in all, and 5 s already holds thousands of requests.
    args = argparse.Namespace(**{**vars(args), "seconds": min(args.seconds, 5)})
    without_backtraces()
    report.append(f"{HEADING}\n")
    program = find_spin_up_lite()
    if not program:
        report.append("Not measured: spin-up-lite not found (../shared/bin, PATH or SPIN_UP_LITE).\n")
        return
    spin = lambda: SpinTrigger(program)  # noqa: E731
    serve = lambda: Fresh(spin_target())  # noqa: E731
    native = lambda: Fresh(NATIVE_TARGET)  # noqa: E731
    report.append(
        "The same Spin component under `spin-up-lite` (Spin 3.6.3's loader and HTTP trigger: "
        "what `spin up --direct-mounts --allow-transient-write` and containerd-shim-spin run), "
        "serving the repo's spin.toml, beside `wasmtime serve -O pooling-allocator=y` and the "
        f"native baseline. `wrk -t2 -cN -d{args.seconds}s --latency`, {args.runs} runs each, fresh "
        "empty log per run; median (min–max). CPU is the server process's user + system time "
        "(all its threads) over the run, divided by the requests served.\n")
    report.append("| route | connections | server | requests/s | p50 ms | p99 ms | CPU µs per request |")
    report.append("|---|---|---|---|---|---|---|")
    for path in ("/", "/healthz"):
        for connections in (16, 64):
            for make in (spin, serve, native):
                rps, p50, p99, cpu = runs_of(make, path, connections, args)
                report.append(f"| `{path}` | {connections} | {make().name} | {spread(rps)} | "
                              f"{spread(p50, '{:.2f}')} | {spread(p99, '{:.2f}')} | "
                              f"{spread(cpu, '{:.0f}')} |")
                print(f"  {path} c{connections} {make().name}: {statistics.median(rps):,.0f} req/s",
                      flush=True)
    report.append("")

    # Where a request's cost goes: /healthz touches no file, so this is host cost only. CPU
    # per request at 16 connections, and the latency of a lone request (1 connection, no
    # queueing). Spin's own knobs (spin-core reads them from the environment) take its
    # pooling allocator apart: by default it keeps 2 MiB of each linear memory and 512 KiB
    # of tables resident and zeroes them with memset on every instance's reuse, where
    # wasmtime serve's pooling returns the pages to the kernel (madvise) and takes page faults.
    variants = [
        spin,
        lambda: SpinTrigger(program, {"SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT": "0",
                                      "SPIN_WASMTIME_TABLE_KEEP_RESIDENT": "0"},
                            "Spin trigger, keep-resident 0 (pages given back, as wasmtime serve)"),
        lambda: SpinTrigger(program, {"SPIN_WASMTIME_POOLING": "0"},
                            "Spin trigger, pooling off (SPIN_WASMTIME_POOLING=0)"),
        serve,
        lambda: Fresh(spin_target(pooling=False), "wasmtime serve, on-demand allocator"),
        native,
    ]
    report.append(f"What one request costs each host: `/healthz` (no file work). CPU µs per "
                  f"request at 16 connections, and p50 of a lone request (`wrk -t1 -c1`); "
                  f"{args.seconds} s runs, {args.runs} each, median (min–max).\n")
    report.append("| server | CPU µs per request, 16 connections | lone request p50 µs | lone request CPU µs |")
    report.append("|---|---|---|---|")
    for make in variants:
        cpu16 = runs_of(make, "/healthz", 16, args)[3]
        _, p50, _, cpu1 = runs_of(make, "/healthz", 1, args)
        report.append(f"| {make().name} | {spread(cpu16)} | {spread([p * 1000 for p in p50])} | "
                      f"{spread(cpu1)} |")
        print(f"  {make().name}: {statistics.median(cpu16):.0f} µs CPU per request", flush=True)
    report.append("")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure")
    args = parser.parse_args()
    report = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()[0]  # other work on the machine shows up as spread in the figures
    step(args, report)
    command = "python3 bench/spin_trigger.py " + " ".join(
        f"--{k} {v}" for k, v in (("seconds", args.seconds), ("runs", args.runs)))
    report.insert(1, f"Measured on its own by `{command}` on {started}. Machine: {machine()}; "
                     f"load average {load:.1f} when it started. Compare within this section: "
                     "every row here comes from this one run.\n")
    # Printed, not written into BENCHMARKS.md, which holds one whole run of scripts/bench.sh.
    print("\n".join(report))


if __name__ == "__main__":
    main()
