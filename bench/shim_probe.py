"""Where the shim's 16-connection rate goes: the same image under `wasmtime run` (49), runwasi's
release shim (0.6.0, wasmtime 27) and runwasi main's shim (wasmtime 36), `GET /` at 16
connections, `APPEND_FSYNC=no`, in alternating rounds. For each: requests/s, the replica
process's CPU per request (utime + stime from /proc, every thread), and with `--strace` the
system calls per request (`strace -c -f` attached for one wrk run, which slows it; the counts per
request are what matters) and the file calls per batch (per write of the log).

    python3 bench/shim_probe.py [--rounds 3] [--seconds 5] [--strace]

Run from scripts/bench.sh's environment (wrk, containerd, ../shared/bin on PATH, root).
"""

import argparse
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import load
import node
from common import WrkRun, cpu_seconds


# A batch is one write of the log (the guest's append, as the host issues it); the file calls
# are every call on a path or a file descriptor other than the sockets and the reactor's.
LOG_WRITES = ("pwritev2", "pwrite64", "pwritev")
FILE_CALLS = ("statx", "newfstatat", "fstat", "openat", "close", "lseek", "pwritev2", "pwrite64",
              "pwritev", "fsync", "fdatasync", "getdents64", "readlinkat")


def pid_of(target):
    if isinstance(target, load.Process):
        return target.process.pid
    return int((Path("/sys/fs/cgroup/cpu") / target.cgroup / "cgroup.procs").read_text().split()[0]) \
        if (Path("/sys/fs/cgroup/cpu") / target.cgroup).exists() else \
        int((Path("/sys/fs/cgroup") / target.cgroup / "cgroup.procs").read_text().split()[0])


def one(target, seconds, strace):
    with tempfile.TemporaryDirectory() as data_dir:
        target.start(Path(data_dir), {"APPEND_FSYNC": "no"})
        try:
            pid = pid_of(target)
            url = f"http://{target.addr}/"
            WrkRun(url, 16, 1)  # warm up
            tracer = None
            if strace:
                out = Path(data_dir) / "strace.txt"
                tracer = subprocess.Popen(["strace", "-c", "-f", "-o", str(out), "-p", str(pid)],
                                          stderr=subprocess.DEVNULL)
                time.sleep(1)
            before = cpu_seconds(pid)
            run = WrkRun(url, 16, seconds)
            cpu = cpu_seconds(pid) - before
            calls = None
            if tracer:
                tracer.send_signal(signal.SIGINT)
                tracer.wait()
                text = out.read_text()
                total = re.search(r"^100\.00\s+\S+\s+\S+\s+(\d+)", text, re.M)
                rows = [line.split() for line in text.splitlines()
                        if re.match(r"^\s*\d+\.\d+\s", line) and not line.startswith("100.00")]
                counts = sorted(((int(r[3]), r[-1]) for r in rows if len(r) >= 5), reverse=True)
                calls = (int(total.group(1)) if total else None, counts)
            return run.rps, run.requests, cpu / run.requests * 1e6, calls
        finally:
            target.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--strace", action="store_true")
    args = parser.parse_args()
    found = [load.WASMTIME_RUN] + [t for t in (node.NodeRuntime.find("release"), node.NodeRuntime.find("main")) if t]
    results = {t.name: [] for t in found}
    for _ in range(args.rounds):
        for target in found:
            results[target.name].append(one(target, args.seconds, False))
    print("| server | requests/s (rounds) | CPU µs per request (rounds) |")
    print("|---|---|---|")
    for name, runs in results.items():
        print(f"| {name} | " + ", ".join(f"{r[0]:,.0f}" for r in runs) + " | "
              + ", ".join(f"{r[2]:.0f}" for r in runs) + " |")
    if args.strace:
        print()
        for target in found:
            rps, requests, _, (total, counts) = one(target, args.seconds, True)
            print(f"{target.name}: {requests} requests under strace, {total} system calls, "
                  f"{total / requests:.1f} per request; top: "
                  + ", ".join(f"{name} {count / requests:.2f}" for count, name in counts[:6]))
            by_name = {name: count for count, name in counts}
            batches = sum(by_name.get(name, 0) for name in LOG_WRITES)
            if batches:
                files = {name: by_name[name] for name in FILE_CALLS if name in by_name}
                print(f"  {batches} batches ({requests / batches:.1f} visits each); file calls per batch: "
                      + ", ".join(f"{name} {count / batches:.2f}" for name, count in files.items()))


if __name__ == "__main__":
    main()
