"""Sealed segments (issue 19): what a claim holds, what sealing costs, what reads cost.

Run as root (it mounts tmpfs claims), after building the server component:

  cargo build --release --target wasm32-wasip2 -p spin-visits-server
  source scripts/tools.sh && nice python3 bench/segments.py [--only fill,rate,retain,stream]

  fill    visits recorded on a 4 MiB tmpfs claim until the first 507, sealing off
          (SEGMENT_BYTES=0) against sealing on (SEGMENT_BYTES=256Ki); 16 connections, wrk in
          2 s rounds until `/` answers 507;
  rate    GET / at 16 and 256 connections, sealing off against on (default 4 MiB segments),
          alternating rounds, each on a fresh 1 GiB tmpfs; requests/s, p99, seals in the
          round, and visits per CPU-second of the runtime (steadier on a loaded machine);
  retain  a 4 MiB tmpfs claim, RETAIN_BYTES=2Mi, SEGMENT_BYTES=256Ki: wrk at 16 connections
          for 40 s fills it to the retention limit, then 16 connections for 60 s from a client
          that counts every answer: non-2xx answers, the final x-visit-count against the count
          before plus the 200s, and the largest the tmpfs grew (sampled every 50 ms);
  retain-shim  the same under runwasi's release wasmtime shim in a private containerd
          (bench/node.py; needs containerd, ctr and buildah, and ../shared/bin on PATH);
  stream  GET /visits of 100 MiB of visits: one plain visits.txt against 25 sealed 4 MiB
          segments (written here with Python's gzip, level 6) and an empty visits.txt; wall
          MB/s, and MB per CPU-second of the runtime (steadier on a loaded machine).

Ratios are taken within one run, so a loaded machine moves both sides alike; the load
average is printed with the figures.
"""

import argparse
import gzip
import http.client
import os
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from common import (RECORD, SERVER_WASM, WASMTIME, WrkRun, cpu_seconds, free_port, wait_for_200,
                    without_backtraces)


def line(n):
    """Visit n's record: distinct lines, one microsecond apart, as a loaded replica writes."""
    seconds, micros = divmod(n, 1_000_000)
    minute, second = divmod(seconds, 60)
    return f"2023-11-18 17:{minute % 60:02d}:{second:02d}.{micros:06d}+03:00\n".encode()


class Server:
    def __init__(self, data_dir, env):
        self.addr = f"127.0.0.1:{free_port()}"
        argv = [WASMTIME, "run", "-S", "inherit-network=y", "-S", "tcp=y", "-S", "cli=y",
                "--dir", f"{data_dir}::/data", "--env", "POD_NAME=bench-0",
                "--env", f"LISTEN_ADDR={self.addr}", "--env", "ADMIN_ADDR=127.0.0.1:0"]
        for key, value in env.items():
            argv += ["--env", f"{key}={value}"]
        self.process = subprocess.Popen(argv + [str(SERVER_WASM)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_for_200(f"http://{self.addr}/healthz")

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://{self.addr}{path}", timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def stop(self):
        self.process.kill()
        self.process.wait()


class ShimServer(Server):
    """The same replica in a private containerd with runwasi's release wasmtime shim
    (bench/node.py, as section 9 runs it), the tmpfs bind-mounted at /data."""

    def __init__(self, data_dir, env):
        import node
        self.runtime = node.NodeRuntime.find("release")
        if self.runtime is None:
            raise RuntimeError(f"the node runtime is left out: {node.missing}")
        self.runtime.start(data_dir, env)
        self.addr, self.process = self.runtime.addr, None

    def stop(self):
        self.runtime.stop()


class Tmpfs:
    def __init__(self, size):
        self.path = Path(tempfile.mkdtemp(prefix="segments-bench-"))
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(self.path)], check=True)

    def used(self):
        out = subprocess.run(["df", "-B1", "--output=used", str(self.path)], capture_output=True,
                             text=True, check=True).stdout
        return int(out.split()[-1])

    def close(self):
        subprocess.run(["umount", str(self.path)], check=True)
        self.path.rmdir()


def fill(report):
    report.append("fill: visits recorded on a 4 MiB tmpfs claim before the first 507 (16 connections)")
    counts = {}
    for name, segment in (("sealing off", "0"), ("sealing on", "256Ki")):
        claim = Tmpfs("4m")
        server = Server(claim.path, {"SEGMENT_BYTES": segment, "APPEND_FSYNC": "no"})
        try:
            while True:
                WrkRun(f"http://{server.addr}/", 16, 2)
                status, _, _ = server.get("/")
                if status == 507:
                    break
                assert status == 200, status
            # Let a last seal finish (it fails for room and is retried), then read the count.
            time.sleep(1.5)
            status, headers, _ = server.get("/visits?tail=0")
            counts[name] = int(headers["x-visit-count"])
            sealed = len([p for p in claim.path.iterdir() if p.name.endswith(".txt.gz")])
            report.append(f"  {name:12} {counts[name]:>10,} visits, {sealed} sealed segments, "
                          f"{claim.used():,} bytes used of the tmpfs")
        finally:
            server.stop()
            claim.close()
    report.append(f"  ratio on/off: {counts['sealing on'] / counts['sealing off']:.2f}x")


def rate(report, rounds, seconds):
    report.append(f"rate: GET / requests/s, {rounds} alternating rounds of {seconds} s each, "
                  "APPEND_FSYNC=no, tmpfs claim of 1 GiB")
    for connections in (16, 256):
        results = {"off": [], "on": []}
        steps, commits = [], []
        for _ in range(rounds):
            for name, segment in (("off", "0"), ("on", "4Mi")):
                claim = Tmpfs("1g")
                server = Server(claim.path, {"SEGMENT_BYTES": segment, "APPEND_FSYNC": "no"})
                try:
                    cpu = cpu_seconds(server.process.pid)
                    run = WrkRun(f"http://{server.addr}/", connections, seconds)
                    cpu = cpu_seconds(server.process.pid) - cpu
                    _, _, metrics = server.get("/metrics")
                    metrics = metrics.decode()
                    sealed = next(int(l.split()[-1]) for l in metrics.splitlines()
                                  if l.startswith("visits_segments_sealed_total"))
                    if sealed:
                        steps.append(bucket_p99(metrics, "visits_seal_step_duration_seconds"))
                    commits.append(bucket_p99(metrics, "visits_commit_duration_seconds"))
                    results[name].append((run.rps, run.p99, sealed, run.requests / cpu))
                finally:
                    server.stop()
                    claim.close()
        off = statistics.median(r[0] for r in results["off"])
        on = statistics.median(r[0] for r in results["on"])
        off_cpu = statistics.median(r[3] for r in results["off"])
        on_cpu = statistics.median(r[3] for r in results["on"])
        for name in ("off", "on"):
            rows = results[name]
            report.append(f"  {connections:>3} connections, sealing {name:3}: "
                          + ", ".join(f"{r[0]:,.0f}/s p99 {r[1]:.2f} ms ({r[2]} seals, "
                                      f"{r[3]:,.0f} visits per CPU-second)" for r in rows))
        report.append(f"  {connections:>3} connections: p99 of a seal step (the longest visits wait for "
                      f"one) at most {max(steps, default=0) * 1000:g} ms; p99 of a group commit at most "
                      f"{max(commits) * 1000:g} ms (histogram bucket bounds)")
        report.append(f"  {connections:>3} connections: median on/off {on / off:.3f} (requests/s), "
                      f"{on_cpu / off_cpu:.3f} (visits per CPU-second of the runtime)")


def bucket_p99(metrics, name):
    """The upper bound of the histogram bucket holding the 99th percentile, in seconds."""
    buckets = [(l.split('le="')[1].split('"')[0], int(l.split()[-1])) for l in metrics.splitlines()
               if l.startswith(f"{name}_bucket")]
    total = buckets[-1][1]
    return next(float(bound) for bound, n in buckets if n >= 0.99 * total)


def retain(report, seconds=60, connections=16, warmup=40, runtime=Server):
    report.append(f"retain ({'release shim' if runtime is ShimServer else 'wasmtime run'}): 4 MiB tmpfs, RETAIN_BYTES=2Mi, SEGMENT_BYTES=256Ki, APPEND_FSYNC=always; "
                  f"wrk at {connections} connections for {warmup} s (to reach the retention limit), "
                  f"then {seconds} s from {connections} connections of a client that counts every answer")
    claim = Tmpfs("4m")
    server = runtime(claim.path, {"SEGMENT_BYTES": "256Ki", "RETAIN_BYTES": "2Mi"})
    statuses, lock, stop = {}, threading.Lock(), threading.Event()
    host, port = server.addr.split(":")
    largest = [0]

    def sample():
        while not stop.is_set():
            largest[0] = max(largest[0], claim.used())
            time.sleep(0.05)

    def client():
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        mine = {}
        while not stop.is_set():
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            mine[response.status] = mine.get(response.status, 0) + 1
            if response.getheader("connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
        with lock:
            for status, n in mine.items():
                statuses[status] = statuses.get(status, 0) + n

    def head():
        request = urllib.request.Request(f"http://{server.addr}/visits", method="HEAD")
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.headers["x-visit-count"]), int(response.headers["x-visit-first"])

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        warm = WrkRun(f"http://{server.addr}/", connections, warmup)
        time.sleep(0.5)
        before, first_before = head()
        threads = [threading.Thread(target=client) for _ in range(connections)]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join()
        sampler.join()
        after, first_after = head()
        _, _, metrics = server.get("/metrics")
        let_go = next(int(l.split()[-1]) for l in metrics.decode().splitlines()
                      if l.startswith("visits_let_go_total"))
        ok = statuses.get(200, 0)
        report.append(f"  wrk: {warm.requests:,} requests, non-2xx {warm.non_2xx}, socket errors "
                      f"{warm.socket_errors}; then x-visit-count {before:,}, x-visit-first {first_before:,}")
        report.append(f"  counted client: answers {statuses}, non-2xx "
                      f"{sum(n for s, n in statuses.items() if s != 200)}")
        report.append(f"  x-visit-count {after:,} = {before:,} + {ok:,} answers 200: {after == before + ok}; "
                      f"x-visit-first {first_after:,}; visits_let_go_total {let_go:,}")
        report.append(f"  tmpfs used at most {largest[0]:,} of {4 << 20:,} bytes (sampled every 50 ms)")
    finally:
        stop.set()
        server.stop()
        claim.close()


def stream(report, rounds=3):
    report.append("stream: GET /visits of 100 MiB of visits (decompressed), MB/s, median of "
                  f"{rounds} (min-max)")
    lines_per_segment = (4 << 20) // len(RECORD)
    segments = 25
    for layout in ("one visits.txt", "25 sealed segments"):
        with tempfile.TemporaryDirectory() as data_dir:
            data = Path(data_dir)
            if layout == "one visits.txt":
                with open(data / "visits.txt", "wb") as log:
                    for s in range(segments):
                        log.write(b"".join(line(s * lines_per_segment + n) for n in range(lines_per_segment)))
            else:
                for s in range(segments):
                    first = s * lines_per_segment + 1
                    last = first + lines_per_segment - 1
                    body = b"".join(line(s * lines_per_segment + n) for n in range(lines_per_segment))
                    (data / f"visits.{first:012}-{last:012}.txt.gz").write_bytes(gzip.compress(body, 6))
                (data / "visits.txt").write_bytes(b"")
            server = Server(data, {"SEGMENT_BYTES": "0"})
            try:
                speeds, per_cpu = [], []
                for _ in range(rounds):
                    cpu = cpu_seconds(server.process.pid)
                    started = time.perf_counter()
                    status, _, body = server.get("/visits")
                    took = time.perf_counter() - started
                    cpu = cpu_seconds(server.process.pid) - cpu
                    assert status == 200 and len(body) == segments * lines_per_segment * len(RECORD)
                    speeds.append(len(body) / took / 1e6)
                    per_cpu.append(len(body) / cpu / 1e6)
                report.append(f"  {layout:20} {statistics.median(speeds):,.0f} MB/s "
                              f"({min(speeds):,.0f}-{max(speeds):,.0f}); per CPU-second of the "
                              f"runtime {statistics.median(per_cpu):,.0f} MB "
                              f"({min(per_cpu):,.0f}-{max(per_cpu):,.0f})")
            finally:
                server.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="fill,rate,retain,stream")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=40, help="retain: seconds of wrk first")
    args = parser.parse_args()
    without_backtraces()
    report = [f"load average at start: {os.getloadavg()}"]
    for part in args.only.split(","):
        {"fill": lambda: fill(report),
         "rate": lambda: rate(report, args.rounds, args.seconds),
         "retain": lambda: retain(report, warmup=args.warmup),
         "retain-shim": lambda: retain(report, warmup=args.warmup, runtime=ShimServer),
         "stream": lambda: stream(report)}[part]()
        print("\n".join(report), flush=True)
        report.clear()
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
