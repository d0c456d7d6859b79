"""Fair at the cap (issue 22), the server component with the StatefulSet's bounds
(MAX_CONNECTIONS 900) at a pod's open-file limit: on `wasmtime run` under `prlimit
--nofile=1024:1024` and, with --shim, on runwasi's release shim under ctr's default spec
(1024:1024, bench/node.py), each figure for this build and, with --baseline, another build
(main's, say, on `wasmtime run`) in the same run:

- idle flood: 4 keep-alive clients on /healthz alone, then behind 1 000 idle connections
  opened first: the newcomers' first answer and their rate against the rate alone;
- closed loop: 1 024 and 1 100 wrk connections on /: requests/s, non-2xx, timeouts, p99 and
  p99 against connections ÷ rate (Little's law: the mean wait if every client waits its turn);
- slowhttptest: slowloris (-H -c 1000 -r 200 -i 10) and slow read (-X … -z 32 -k 3 on /visits of
  a 10 MB log): the share of seconds its probe found the service available.

    python3 bench/fair.py [--baseline PATH.wasm] [--shim] [--seconds 30]

Needs wrk and slowhttptest (Debian packages) and an open-file hard limit above 2 200.
bench/run.py runs `step` (this build only) as BENCHMARKS.md's section 11.
"""

import argparse
import csv
import os
import re
import resource
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import load
import node
from common import CHECKS, SERVER_WASM, WASMTIME, WrkRun, free_port, wait_for_200

NOFILE = (1024, 1024)
# The StatefulSet's bounds (k8s/statefulset.yaml); visits unsynced, as the serving sections.
ENV = {"MAX_CONNECTIONS": "900", "LISTEN_BACKLOG": "1024", "IDLE_TIMEOUT_SECONDS": "60",
       "HEADER_READ_TIMEOUT_SECONDS": "10", "WRITE_TIMEOUT_SECONDS": "30", "APPEND_FSYNC": "no"}
RECORD = b"2023-11-18 17:54:26.913511+03:00\n"


class Server:
    """A build on `wasmtime run` at the pod's open-file limit."""

    def __init__(self, wasm, data_dir):
        self.addr = f"127.0.0.1:{free_port()}"
        envs = [arg for key, value in {**ENV, "LISTEN_ADDR": self.addr, "ADMIN_ADDR": "127.0.0.1:0",
                                       "POD_NAME": "bench-0"}.items() for arg in ("--env", f"{key}={value}")]
        self.process = subprocess.Popen(
            ["prlimit", f"--nofile={NOFILE[0]}:{NOFILE[1]}", "--", WASMTIME, "run", "-S", "inherit-network=y",
             "-S", "tcp=y", "-S", "cli=y", "--dir", f"{data_dir}::/data", *envs, str(wasm)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_200(f"http://{self.addr}/healthz")

    def url(self, path):
        return f"http://{self.addr}{path}"

    def stop(self):
        self.process.kill()
        self.process.wait()


class ShimServer:
    """This build's image on runwasi's release shim, ctr's 1024:1024 (bench/node.py)."""

    def __init__(self, data_dir):
        self.target = node.NodeRuntime.find("release")
        self.target.start(Path(data_dir), ENV, load.Limits(None, None, NOFILE))
        self.addr = self.target.addr

    def url(self, path):
        return f"http://{self.addr}{path}"

    def stop(self):
        self.target.stop()


class Host:
    """Where a build runs: `name` for the tables, `start(data_dir)` a server on it."""

    def __init__(self, name, start):
        self.name, self.start = name, start

    @classmethod
    def wasmtime(cls, wasm, name="server component (wasmtime run)"):
        return cls(name, lambda data_dir: Server(wasm, data_dir))

    @classmethod
    def shim(cls):
        """The release shim, or None (and why) when it is not there."""
        if node.NodeRuntime.find("release") is None:
            return None, node.missing
        return cls(node.NodeRuntime.name, ShimServer), None


def first_answer(addr, timeout=30.0):
    """Seconds from connecting to the first answer of /healthz, or None."""
    host, port = addr.split(":")
    started = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
        try:
            return (time.perf_counter() - started) if sock.recv(64) else None
        except OSError:
            return None


def idle_flood(host, seconds):
    with tempfile.TemporaryDirectory() as data_dir:
        server = host.start(data_dir)
        try:
            alone = WrkRun(server.url("/healthz"), 4, seconds)
        finally:
            server.stop()
    with tempfile.TemporaryDirectory() as data_dir:
        server = host.start(data_dir)
        host, port = server.addr.split(":")
        idle = [socket.create_connection((host, int(port)), timeout=10) for _ in range(1000)]
        try:
            first = first_answer(server.addr, timeout=20)
            behind = WrkRun(server.url("/healthz"), 4, seconds)
        finally:
            for sock in idle:
                sock.close()
            server.stop()
    return {"alone": alone.rps, "first": first, "behind": behind.rps, "ratio": behind.rps / alone.rps}


def closed_loop(host, connections, seconds):
    with tempfile.TemporaryDirectory() as data_dir:
        server = host.start(data_dir)
        try:
            run = WrkRun(server.url("/"), connections, seconds)
        finally:
            server.stop()
    timeouts = 0
    found = re.search(r"timeout (\d+)", run.out)
    if found:
        timeouts = int(found.group(1))
    fair_ms = connections / run.rps * 1000
    return {"rps": run.rps, "non_2xx": run.non_2xx, "socket_errors": run.socket_errors, "timeouts": timeouts,
            "p99": run.p99, "fair_ms": fair_ms, "ratio": run.p99 / fair_ms}


def slowhttptest(host, kind, seconds, out_dir):
    with tempfile.TemporaryDirectory() as data_dir:
        if kind == "slow read":
            Path(data_dir, "visits.txt").write_bytes(RECORD * (10_000_000 // len(RECORD)))
        server = host.start(data_dir)
        label = re.sub(r"[^a-z0-9]+", "-", f"{host.name} {kind}".lower()).strip("-")
        prefix = Path(out_dir) / label
        common = ["-c", "1000", "-r", "200", "-l", str(seconds), "-g", "-o", str(prefix), "-p", "3"]
        args = (["-H", "-i", "10", "-u", server.url("/healthz")] if kind == "slowloris" else
                ["-X", "-w", "512", "-y", "1024", "-n", "5", "-z", "32", "-k", "3", "-u", server.url("/visits")])
        try:
            subprocess.run(["slowhttptest", *args, *common], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=seconds + 60)
        finally:
            server.stop()
    with open(f"{prefix}.csv") as table:
        rows = list(csv.DictReader(table))
    key = next(k for k in rows[0] if "service available" in k.lower())
    # "Service Available" is 0 in a second its probe got no answer (1000 or YES when it did).
    down = [int(row.get("Seconds", i)) for i, row in enumerate(rows) if row[key].strip().upper() in ("0", "NO")]
    available = len(rows) - len(down)
    return {"seconds": len(rows), "available": available, "share": available / len(rows), "down": down,
            "csv": f"{prefix}.csv"}


def spans(seconds):
    """[3, 4, 5, 9] -> "unavailable in seconds 3–5, 9": the CSV's unavailable seconds, compactly."""
    parts, start = [], None
    for i, second in enumerate(seconds):
        if start is None:
            start = second
        if i + 1 == len(seconds) or seconds[i + 1] != second + 1:
            parts.append(f"{start}" if start == second else f"{start}–{second}")
            start = None
    return f"unavailable in second{'s' if len(seconds) > 1 else ''} {', '.join(parts)}" if parts else "never unavailable"


def raise_nofile():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 1 000 idle sockets, wrk's 1 100


def step(args, report):
    """Appends BENCHMARKS.md's section 11 to `report`: this build on `wasmtime run` and on the
    release shim, wrk runs of args.seconds and slowhttptest runs of six times that."""
    print("fair", flush=True)
    raise_nofile()
    wrk_seconds, slow_seconds = args.seconds, 6 * args.seconds
    hosts = [Host.wasmtime(SERVER_WASM)]
    shim, why = Host.shim()
    report.append("## 11. Fair at the cap: idle floods, closed loops and slow clients\n")
    report.append(
        "The server component with the StatefulSet's bounds (`MAX_CONNECTIONS=900`, `LISTEN_BACKLOG=1024`, "
        "idle 60 s, head 10 s, write 30 s) at a pod's open-file limit: on `wasmtime run` under `prlimit "
        "--nofile=1024:1024` and on runwasi's release shim under ctr's default spec (1024:1024), "
        f"`APPEND_FSYNC=no`, one run each (bench/fair.py). Idle flood: 4 keep-alive clients (`wrk -t2 -c4 "
        f"-d{wrk_seconds}s`) on `/healthz` alone, then on a fresh replica behind 1 000 idle connections opened "
        "first: the first answer of a newcomer's `/healthz`, and the rate against the rate alone. Closed loop: "
        f"`wrk -t2 -cN -d{wrk_seconds}s` on `/`; connections ÷ rate is the mean wait if every client waits its "
        "turn (Little's law). slowhttptest: 1 000 connections at 200 a second for "
        f"{slow_seconds} s, slowloris (`-H -i 10` on `/healthz`) and slow read (`-X -w 512 -y 1024 -n 5 -z 32 "
        "-k 3` on `/visits` of a 10 MB log); its probe (3 s timeout) checks the service every second, and "
        "the seconds it found it unavailable are listed from its CSV (second 0 is the start).\n")
    if shim:
        hosts.append(shim)
    else:
        report.append(f"No release shim row: {why}.\n")
    report.append("| host | test | measured |")
    report.append("|---|---|---|")
    out_dir = tempfile.mkdtemp(prefix="fair-")
    for host in hosts:
        for test, text, checks, _ in measured(host, ("idle", "closed", "slow"), wrk_seconds, slow_seconds, out_dir):
            report.append(f"| {host.name} | {test} | {text} |")
            CHECKS.extend(checks)
            print(f"  {host.name} {test}: {text}", flush=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    report.append("")


def measured(host, only, wrk_seconds, slow_seconds, out_dir):
    """Runs the figures named in `only` on `host`: for each, the test, what was measured, its
    targets as `CHECKS` rows, and the slowhttptest CSV (or None)."""
    limit = f"{host.name}, fd 1024:1024"
    if "idle" in only:
        r = idle_flood(host, wrk_seconds)
        first = f"{r['first']:.2f} s" if r["first"] is not None else "none in 20 s"
        yield ("idle flood", f"4 clients alone {r['alone']:,.0f}/s; behind 1 000 idle: first answer {first}, "
               f"{r['behind']:,.0f}/s ({r['ratio']:.2f}×)",
               [(f"{limit}: behind 1 000 idle connections a newcomer's first answer ≤ 1 s", first,
                 r["first"] is not None and r["first"] <= 1),
                (f"{limit}: 4 newcomers behind 1 000 idle connections ≥ 0.8× their rate alone",
                 f"{r['ratio']:.2f}×", r["ratio"] >= 0.8)], None)
    if "closed" in only:
        for connections in (1024, 1100):
            r = closed_loop(host, connections, wrk_seconds)
            yield (f"closed loop, {connections:,} connections on `/`",
                   f"{r['rps']:,.0f}/s, {r['non_2xx']} non-2xx, {r['socket_errors']} socket errors "
                   f"({r['timeouts']} timeouts), p99 {r['p99']:.0f} ms; connections ÷ rate {r['fair_ms']:.1f} ms, "
                   f"p99 {r['ratio']:.1f}× that",
                   [(f"{limit}: {connections:,} closed-loop connections: 0 non-2xx, 0 timeouts, "
                     "p99 ≤ 4 × connections ÷ rate",
                     f"{r['non_2xx']} non-2xx, {r['timeouts']} timeouts, p99 {r['ratio']:.1f}×",
                     r["non_2xx"] == 0 and r["timeouts"] == 0 and r["ratio"] <= 4)], None)
    if "slow" in only:
        for kind in ("slowloris", "slow read"):
            r = slowhttptest(host, kind, slow_seconds, out_dir)
            yield (f"slowhttptest {kind}", f"available {r['available']} of {r['seconds']} s ({r['share']:.0%}); "
                   f"{spans(r['down'])}",
                   [(f"{limit}: slowhttptest {kind}, 1 000 connections: service available ≥ 95% of the "
                     "seconds", f"{r['share']:.0%}", r["share"] >= 0.95)], r["csv"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", help="another build of the server component to measure beside this one")
    parser.add_argument("--shim", action="store_true", help="also this build on runwasi's release shim")
    parser.add_argument("--seconds", type=int, default=30, help="length of each slowhttptest run")
    parser.add_argument("--wrk-seconds", type=int, default=6)
    parser.add_argument("--only", choices=("idle", "closed", "slow"), action="append")
    args = parser.parse_args()
    raise_nofile()
    hosts = [Host.wasmtime(SERVER_WASM, "this build")]
    if args.baseline:
        hosts.append(Host.wasmtime(Path(args.baseline), "baseline"))
    if args.shim:
        shim, why = Host.shim()
        if not shim:
            parser.error(f"no release shim: {why}")
        hosts.append(Host("this build, release shim", shim.start))
    only = set(args.only or ("idle", "closed", "slow"))
    out_dir = tempfile.mkdtemp(prefix="fair-")
    print(f"load average before: {os.getloadavg()}", flush=True)
    for host in hosts:
        for test, text, _, csv_path in measured(host, only, args.wrk_seconds, args.seconds, out_dir):
            print(f"| {host.name} | {test} | {text}" + (f"; CSV {csv_path}" if csv_path else "") + " |", flush=True)
    print(f"load average after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
