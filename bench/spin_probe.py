"""Where one request's CPU goes on each host, for bench/notes.md: the Spin component on Spin
3.6.3's trigger (default, and with its pooling allocator's keep-resident knobs at 0) and on
`wasmtime serve -O pooling-allocator=y`, under `wrk -t2 -c16` on /healthz (no file work).

  1. perf record: samples sorted into buckets (the host's own code, memset, kernel, guest
     code, malloc/free, ...), scaled to µs per request by the process's CPU time. This
     machine has no hardware counters, so sampling is on the software clock; the shipped
     spin-up-lite is stripped, so its own code is one bucket.
  2. perf stat's software events and strace's syscall counts, per request.

    source scripts/tools.sh && python3 bench/spin_probe.py     # needs perf and strace
"""

import collections
import re
import signal
import subprocess
import tempfile
import time

from common import cpu_seconds, spin_target, without_backtraces
from spin_trigger import Fresh, SpinTrigger, find_spin_up_lite

SECONDS = 5


def bucket(dso, symbol):
    if dso.startswith("[JIT]"):
        return "guest code (JIT)"
    if dso == "[kernel.kallsyms]":
        return "kernel"
    if "memset" in symbol:
        return "memset"
    if "memmove" in symbol or "memcpy" in symbol:
        return "memcpy/memmove"
    if dso.startswith("libc") and re.search(r"malloc|free|realloc|calloc|unlink_chunk|consolidate", symbol):
        return "malloc/free"
    if dso in ("spin-up-lite", "wasmtime"):
        return "host's own code"
    return "other"


def load(url, connections, threads=2):
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{SECONDS}s", url],
                         check=True, capture_output=True, text=True).stdout
    return int(re.search(r"(\d+) requests in", out).group(1))


def attach(argv):
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # let it attach before the load starts
    return process


def detach(process):
    process.send_signal(signal.SIGINT)
    return process.communicate()[1]


def profile(server, scratch):
    pid, url = str(server.process.pid), f"http://{server.addr}/healthz"
    print(f"{server.name}:")
    data = f"{scratch}/perf.data"
    recorder = attach(["perf", "record", "-F", "1999", "-o", data, "-p", pid])
    before = cpu_seconds(server.process.pid)
    requests = load(url, 16)
    cpu_us = (cpu_seconds(server.process.pid) - before) / requests * 1e6
    detach(recorder)
    report = subprocess.run(["perf", "report", "-i", data, "--sort", "dso,sym", "--stdio"],
                            capture_output=True, text=True).stdout
    shares = collections.Counter()
    for line in report.splitlines():
        row = re.match(r"\s*([\d.]+)%\s+(\S+(?: tid \d+)?)\s+\[.\]\s+(.*)", line)
        if row:
            shares[bucket(row.group(2), row.group(3))] += float(row.group(1))
    print(f"  {cpu_us:.0f} µs CPU per request (while sampled): " + ", ".join(
        f"{name} {share * cpu_us / 100:.0f}" for name, share in shares.most_common()))

    counter = attach(["perf", "stat", "-x,", "-e", "task-clock,page-faults,context-switches",
                      "-p", pid])
    requests = load(url, 16)
    for line in detach(counter).strip().splitlines():
        value, _, event = line.split(",")[:3]
        print(f"  {event}: {float(value) / requests:.3f} per request")

    # strace slows the host a lot, so fewer requests; counts per request still hold.
    tracer = attach(["strace", "-f", "-c", "-p", pid])
    requests = load(url, 4, threads=1)
    calls = []
    for line in detach(tracer).splitlines():
        row = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
        if row and row.group(2) != "total" and int(row.group(1)) >= requests / 2:
            calls.append(f"{row.group(2)} {int(row.group(1)) / requests:.1f}")
    print("  syscalls per request: " + ", ".join(calls))


def main():
    without_backtraces()
    program = find_spin_up_lite()
    hosts = [
        lambda: SpinTrigger(program),
        lambda: SpinTrigger(program, {"SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT": "0",
                                      "SPIN_WASMTIME_TABLE_KEEP_RESIDENT": "0"},
                            "Spin trigger, keep-resident 0"),
        lambda: Fresh(spin_target()),
    ]
    for make in hosts:
        server = make().start()
        try:
            with tempfile.TemporaryDirectory() as scratch:
                profile(server, scratch)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
