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
          in 10 s rounds until retention has let visits go (at most --warmup s), then 16
          connections for 60 s from a client that counts every answer: non-2xx answers, the final x-visit-count against the count
          before plus the 200s, and the largest the tmpfs grew (sampled every 50 ms);
  retain-shim  the same under runwasi's release wasmtime shim in a private containerd
          (bench/node.py; needs containerd, ctr and buildah, and ../shared/bin on PATH);
  stream  GET /visits of 100 MiB of visits: one plain visits.txt against 25 sealed 4 MiB
          segments (written here with Python's gzip, level 6) and an empty visits.txt; wall
          MB/s, and MB per CPU-second of the runtime (steadier on a loaded machine).

Ratios are taken within one run, so a loaded machine moves both sides alike; the load
average is printed with the figures. bench/run.py runs `step` as BENCHMARKS.md's section 10.
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

from common import (CHECKS, RECORD, SERVER_WASM, WASMTIME, WrkRun, cpu_seconds, free_port, wait_for_200,
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
    counts, found = {}, {}
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
            found[name] = (counts[name], sealed)
            report.append(f"  {name:12} {counts[name]:>10,} visits, {sealed} sealed segments, "
                          f"{claim.used():,} bytes used of the tmpfs")
        finally:
            server.stop()
            claim.close()
    report.append(f"  ratio on/off: {counts['sealing on'] / counts['sealing off']:.2f}x")
    return found


def rate(report, rounds, seconds):
    report.append(f"rate: GET / requests/s, {rounds} alternating rounds of {seconds} s each, "
                  "APPEND_FSYNC=no, tmpfs claim of 1 GiB")
    found = {}
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
        found[connections] = {"rps": (off, on), "per_cpu": (off_cpu, on_cpu),
                              "p99": tuple(statistics.median(r[1] for r in results[n]) for n in ("off", "on")),
                              "seals": [r[2] for r in results["on"]],
                              "step_p99": max(steps, default=0), "commit_p99": max(commits)}
    return found


def bucket_p99(metrics, name):
    """The upper bound of the histogram bucket holding the 99th percentile, in seconds."""
    buckets = [(l.split('le="')[1].split('"')[0], int(l.split()[-1])) for l in metrics.splitlines()
               if l.startswith(f"{name}_bucket")]
    total = buckets[-1][1]
    return next(float(bound) for bound, n in buckets if n >= 0.99 * total)


def let_go(server):
    _, _, metrics = server.get("/metrics")
    return next(int(l.split()[-1]) for l in metrics.decode().splitlines()
                if l.startswith("visits_let_go_total"))


def retain(report, seconds=60, connections=16, warmup=240, runtime=Server):
    """Returns the figures; warm-up: wrk in 10 s rounds until retention has let visits go, at
    most `warmup` seconds (sealed segments are gzip, so how long that takes depends on the
    host's rate: 40 s under `wasmtime run`, over 40 s under the release shim)."""
    report.append(f"retain ({'release shim' if runtime is ShimServer else 'wasmtime run'}): 4 MiB tmpfs, RETAIN_BYTES=2Mi, SEGMENT_BYTES=256Ki, APPEND_FSYNC=always; "
                  f"wrk at {connections} connections in 10 s rounds until visits are let go (at most {warmup} s), "
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
        warm_requests = warm_non_2xx = warm_errors = warmed = 0
        while warmed < warmup:
            warm = WrkRun(f"http://{server.addr}/", connections, min(10, warmup - warmed))
            warmed += min(10, warmup - warmed)
            warm_requests += warm.requests
            warm_non_2xx += warm.non_2xx
            warm_errors += warm.socket_errors
            if let_go(server):
                break
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
        gone = let_go(server)
        ok = statuses.get(200, 0)
        report.append(f"  wrk for {warmed} s: {warm_requests:,} requests, non-2xx {warm_non_2xx}, socket errors "
                      f"{warm_errors}; then x-visit-count {before:,}, x-visit-first {first_before:,}")
        report.append(f"  counted client: answers {statuses}, non-2xx "
                      f"{sum(n for s, n in statuses.items() if s != 200)}")
        report.append(f"  x-visit-count {after:,} = {before:,} + {ok:,} answers 200: {after == before + ok}; "
                      f"x-visit-first {first_after:,}; visits_let_go_total {gone:,}")
        report.append(f"  tmpfs used at most {largest[0]:,} of {4 << 20:,} bytes (sampled every 50 ms)")
        return {"warmed": warmed, "warm_requests": warm_requests, "warm_non_2xx": warm_non_2xx,
                "warm_failed": warm_non_2xx + warm_errors,
                "answers": sum(statuses.values()), "ok": ok, "before": before, "after": after,
                "first": first_after, "let_go": gone, "largest": largest[0], "claim": 4 << 20}
    finally:
        stop.set()
        server.stop()
        claim.close()


def stream(report, rounds=3):
    report.append("stream: GET /visits of 100 MiB of visits (decompressed), MB/s, median of "
                  f"{rounds} (min-max)")
    lines_per_segment = (4 << 20) // len(RECORD)
    segments = 25
    found = {}
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
                found[layout] = (speeds, per_cpu)
                report.append(f"  {layout:20} {statistics.median(speeds):,.0f} MB/s "
                              f"({min(speeds):,.0f}-{max(speeds):,.0f}); per CPU-second of the "
                              f"runtime {statistics.median(per_cpu):,.0f} MB "
                              f"({min(per_cpu):,.0f}-{max(per_cpu):,.0f})")
            finally:
                server.stop()
    return found


def step(args, report):
    """Appends BENCHMARKS.md's section 10 to `report`: fill, rate (args.runs rounds of
    args.seconds), retain under `wasmtime run` and the release shim (counted for six times
    args.seconds), stream. The console lines go to stdout as the parts finish."""
    print("segments", flush=True)
    without_backtraces()
    lines = []

    def console():
        print("\n".join(lines), flush=True)
        lines.clear()

    counted = 6 * args.seconds
    report.append("## 10. Sealed segments: what a claim holds, what sealing costs, what reads cost\n")
    report.append("The server component on `wasmtime run` (and, for retention, runwasi's release shim as section 9 "
                  "runs it), each claim a tmpfs of the size given (bench/segments.py). Sealing off is "
                  "`SEGMENT_BYTES=0`. Visits per CPU-second count the runtime's user + system time, which "
                  "the machine's other load moves much less than the wall-clock rate.\n")
    found = fill(lines)
    console()
    off, on = found["sealing off"], found["sealing on"]
    ratio = on[0] / off[0]
    report.append("| what | sealing off | sealing on | on ÷ off |")
    report.append("|---|---|---|---|")
    report.append(f"| visits recorded on a 4 MiB tmpfs claim before the first 507 (`SEGMENT_BYTES=256Ki`, "
                  f"wrk at 16 connections, `APPEND_FSYNC=no`) | {off[0]:,} | {on[0]:,} ({on[1]} segments) | "
                  f"{ratio:.2f}× |")
    CHECKS.append(("server component (wasmtime run): visits on a 4 MiB claim before the first 507, sealing on "
                   "≥ 8× off", f"{ratio:.2f}×", ratio >= 8))
    found = rate(lines, args.runs, args.seconds)
    console()
    for connections, r in found.items():
        (off_rps, on_rps), (off_cpu, on_cpu) = r["rps"], r["per_cpu"]
        report.append(f"| `GET /` at {connections} connections, {args.runs} alternating round(s) of {args.seconds} s, "
                      f"4 MiB segments, `APPEND_FSYNC=no`, 1 GiB tmpfs: requests/s, median; p99; visits per "
                      f"CPU-second | {off_rps:,.0f}/s · p99 {r['p99'][0]:.1f} ms · {off_cpu:,.0f} | "
                      f"{on_rps:,.0f}/s · p99 {r['p99'][1]:.1f} ms · {on_cpu:,.0f} ({'–'.join(map(str, sorted({min(r['seals']), max(r['seals'])})))} "
                      f"seals a round) | {on_rps / off_rps:.2f}× wall, {on_cpu / off_cpu:.2f}× per CPU-second |")
    found_stream = stream(lines)
    console()
    (plain, plain_cpu), (sealed, sealed_cpu) = found_stream["one visits.txt"], found_stream["25 sealed segments"]
    m = statistics.median
    report.append(f"| `GET /visits` of 100 MiB (3.2 M visits): one `visits.txt` against 25 sealed 4 MiB segments "
                  f"(gzip level 6), MB per CPU-second of the runtime, median of 3 | {m(plain_cpu):,.0f} | "
                  f"{m(sealed_cpu):,.0f} | {m(sealed_cpu) / m(plain_cpu):.2f}× |")
    report.append(f"| same, wall MB/s | {m(plain):,.0f} | {m(sealed):,.0f} | {m(sealed) / m(plain):.2f}× |")
    report.append("")
    report.append("p99 of a seal step (how long one 64 KiB step held the server's thread, the "
                  "`visits_seal_step_duration_seconds` bucket holding the 99th percentile) against a group "
                  "commit's (`visits_commit_duration_seconds`), highest over the rounds with sealing on: " +
                  "; ".join(f"{c} connections {r['step_p99'] * 1000:g} ms against {r['commit_p99'] * 1000:g} ms"
                            if r["step_p99"] else f"{c} connections: no seal in these rounds (commit "
                            f"{r['commit_p99'] * 1000:g} ms)" for c, r in found.items()) + ".\n")
    report.append(f"Retention: a 4 MiB tmpfs claim, `RETAIN_BYTES=2Mi`, `SEGMENT_BYTES=256Ki`, `APPEND_FSYNC=always`; "
                  f"wrk at 16 connections in 10 s rounds until `visits_let_go_total` is above 0, then {counted} s of "
                  "16 connections of a client that counts every answer. Exact: the final `x-visit-count` is the "
                  "count before plus the answers 200. Largest: the most the tmpfs held, sampled every 50 ms.\n")
    report.append("| runtime | warm-up | counted answers | non-2xx (warm-up and counted) | `x-visit-count` after = before + 200s | "
                  "`x-visit-first` / `visits_let_go_total` | largest on the claim |")
    report.append("|---|---|---|---|---|---|---|")
    import node
    for name, runtime in (("server component (wasmtime run)", Server), (node.NodeRuntime.name, ShimServer)):
        try:
            r = retain(lines, seconds=counted, runtime=runtime)
        except RuntimeError as error:
            report.append(f"| {name} | not measured: {error} | | | | | |")
            console()
            continue
        console()
        bad = r["answers"] - r["ok"]
        exact = r["after"] == r["before"] + r["ok"]
        report.append(f"| {name} | {r['warmed']} s, {r['warm_requests']:,} requests, {r['warm_failed']} failed "
                      "(wrk: non-2xx and socket errors) | "
                      f"{r['answers']:,} | {bad + r['warm_non_2xx']} | {r['after']:,} = {r['before']:,} + {r['ok']:,}: "
                      f"{'exact' if exact else '**not exact**'} | {r['first']:,} / {r['let_go']:,} | "
                      f"{r['largest']:,} of {r['claim']:,} bytes |")
        CHECKS.append((f"{name}: retention on a 4 MiB claim: 0 non-2xx, the count exact, visits let go",
                       f"{bad} non-2xx, {'exact' if exact else 'not exact'}, {r['let_go']:,} let go",
                       bad == 0 and r["warm_non_2xx"] == 0 and exact and r["let_go"] > 0))
    report.append("")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="fill,rate,retain,stream")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=240,
                        help="retain: at most this many seconds of wrk first, until visits are let go")
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
