"""Load on one replica: connection scaling, idle connections, the durability policy, and the
replica as deployed.

Run by bench/run.py after its own steps (or alone: `python3 bench/run.py --only load`, which prints the sections).
Each figure comes from a fresh server on an empty log; the targets take turns run by run
(alternating rounds), so a busy minute on this shared machine falls on all of them. Targets: the
server component under `wasmtime run`, the same image under runwasi's wasmtime shim as released
(0.6.0, wasmtime 27) and as on runwasi's main (wasmtime 36) (bench/node.py, used when the shims
are there), and the native baseline.

As deployed (section 9): the manifest's CPU and memory limits (k8s/statefulset.yaml) as a cgroup
(a child of /sys/fs/cgroup, v2 when its cpu and memory controllers are there, else v1's cpu and
memory hierarchies; the shim gets them as the OCI spec's linux.resources) and the node's default
open-file limit 1024:1024 (`prlimit` for processes, ctr's default spec for the shim).
"""

import os
import re
import resource
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import node
from common import CHECKS, NATIVE, ROOT, SERVER_WASM, WASMTIME, WrkRun, free_port, wait_for_200

CONNECTIONS = (16, 64, 256, 1024)
IDLE = (0, 100, 1000)
ACTIVE_BESIDE_IDLE = 4
SECONDS = 5
NODE_NOFILE = (1024, 1024)


def quantity(value):
    """A Kubernetes quantity: CPU in cores, memory in bytes."""
    value = str(value)
    units = {"m": 1e-3, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 1e3, "M": 1e6, "G": 1e9}
    for unit, factor in units.items():
        if value.endswith(unit) and value[:-len(unit)].replace(".", "").isdigit():
            return float(value[:-len(unit)]) * factor
    return float(value)


class Limits:
    """CPU (cores or None), memory (bytes or None) and RLIMIT_NOFILE (soft, hard)."""

    def __init__(self, cpu, memory, nofile=NODE_NOFILE):
        self.cpu, self.memory, self.nofile = cpu, memory, nofile

    @classmethod
    def manifest(cls):
        import yaml
        docs = yaml.safe_load_all((ROOT / "k8s" / "statefulset.yaml").read_text())
        sts = next(d for d in docs if d and d.get("kind") == "StatefulSet")
        limits = sts["spec"]["template"]["spec"]["containers"][0].get("resources", {}).get("limits", {})
        cpu = quantity(limits["cpu"]) if "cpu" in limits else None
        memory = int(quantity(limits["memory"])) if "memory" in limits else None
        return cls(cpu, memory)

    def label(self):
        cpu = f"{self.cpu * 1000:.0f}m CPU" if self.cpu else "no CPU limit"
        memory = f"{self.memory >> 20}Mi" if self.memory else "no memory limit"
        return f"{cpu}, {memory}, fd {self.nofile[0]}:{self.nofile[1]}"


class Cgroup:
    """A cgroup for one process with `limits`' CPU and memory, and its peak memory."""

    def __init__(self, limits):
        name = f"spin-visits-bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        root = Path("/sys/fs/cgroup")
        controllers = root / "cgroup.controllers"
        if controllers.exists() and {"cpu", "memory"} <= set(controllers.read_text().split()):
            (root / "cgroup.subtree_control").write_text("+cpu +memory")
            self.dirs = [root / name]
            self.dirs[0].mkdir()
            if limits.cpu:
                (self.dirs[0] / "cpu.max").write_text(f"{int(limits.cpu * 100_000)} 100000")
            if limits.memory:
                (self.dirs[0] / "memory.max").write_text(str(limits.memory))
            self.memory_dir = self.dirs[0]
        else:
            self.dirs = [root / "cpu" / name, root / "memory" / name]
            for directory in self.dirs:
                directory.mkdir()
            if limits.cpu:
                (self.dirs[0] / "cpu.cfs_period_us").write_text("100000")
                (self.dirs[0] / "cpu.cfs_quota_us").write_text(str(int(limits.cpu * 100_000)))
            if limits.memory:
                (self.dirs[1] / "memory.limit_in_bytes").write_text(str(limits.memory))
            self.memory_dir = self.dirs[1]

    def enter(self):
        """Run in the child before exec: moves it into every directory."""
        for directory in self.dirs:
            (directory / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self):
        for directory in self.dirs:
            try:
                directory.rmdir()
            except OSError:
                pass


def memory_peak_mib(directory):
    """The cgroup's peak memory (page cache of the log included) and its anonymous memory
    now, in MiB; None when unknown."""
    if directory is None:
        return None
    if (directory / "memory.peak").exists():
        peak = int((directory / "memory.peak").read_text())
        stat = dict(line.split() for line in (directory / "memory.stat").read_text().splitlines())
        anon = int(stat["anon"])
    else:
        peak = int((directory / "memory.max_usage_in_bytes").read_text())
        stat = dict(line.split() for line in (directory / "memory.stat").read_text().splitlines())
        anon = int(stat["rss"])
    return peak / (1 << 20), anon / (1 << 20)


class Process:
    """A replica as a local process: the server component on `wasmtime run`, or native."""

    def __init__(self, name, argv):
        self.name, self.argv = name, argv

    def start(self, data_dir, env, limits=None):
        self.addr = f"127.0.0.1:{free_port()}"
        argv = self.argv(self.addr, data_dir, env)
        self.cgroup = None
        if limits is not None:
            soft, hard = limits.nofile
            argv = ["prlimit", f"--nofile={soft}:{hard}", "--", *argv]
            self.cgroup = Cgroup(limits)
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        preexec_fn=self.cgroup.enter if self.cgroup else None,
                                        env={"DATA_DIR": str(data_dir), "LISTEN_ADDR": self.addr,
                                             "ADMIN_ADDR": "127.0.0.1:0", "POD_NAME": "bench-0", **env})
        wait_for_200(f"http://{self.addr}/healthz")

    def memory_dir(self):
        return self.cgroup.memory_dir if self.cgroup else None

    def stop(self):
        self.process.kill()
        self.process.wait()
        if self.cgroup:
            self.cgroup.remove()


def wasmtime_run(addr, data_dir, env):
    envs = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
    return [WASMTIME, "run", "-S", "inherit-network=y", "-S", "tcp=y", "-S", "cli=y",
            "--dir", f"{data_dir}::/data", "--env", "POD_NAME=bench-0", "--env", f"LISTEN_ADDR={addr}",
            "--env", "ADMIN_ADDR=127.0.0.1:0", *envs, str(SERVER_WASM)]


WASMTIME_RUN = Process("server component (wasmtime run)", wasmtime_run)
NATIVE_PROCESS = Process("native Rust (hyper)", lambda addr, data_dir, env: [str(NATIVE)])


def targets(main_shim=True):
    """wasmtime run, the release shim, runwasi main's shim (when asked), native: last."""
    found = [WASMTIME_RUN]
    for which in ("release", "main") if main_shim else ("release",):
        shim = node.NodeRuntime.find(which)
        if shim:
            found.append(shim)
    found.append(NATIVE_PROCESS)
    return found


def wrk(url, connections, seconds):
    """requests/s, p99 ms, and failed visits (socket errors, timeouts, non-2xx) of one wrk run."""
    run = WrkRun(url, connections, seconds)
    if run.socket_errors or run.non_2xx:
        found = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", run.out)
        kinds = dict(zip(("connect", "read", "write", "timeout"), map(int, found.groups()))) if found else {}
        FAILURES.append((connections, {**{k: v for k, v in kinds.items() if v}, "non-2xx": run.non_2xx}))
    return run.rps, run.p99, run.socket_errors + run.non_2xx


FAILURES = []  # (connections, {kind: count}) of every wrk run with failed visits


def once(target, path, connections, env=None, idle=0, limits=None):
    """One run on a fresh replica: requests/s, p99, failed visits, the slowest answer to
    `/metrics` right after it (a replica must not stay busy after load), and the cgroup's
    memory (peak, anonymous) in MiB when it has one."""
    with tempfile.TemporaryDirectory() as data_dir:
        if limits is None:
            target.start(Path(data_dir), env or {})
        else:
            target.start(Path(data_dir), env or {}, limits)
        try:
            with IdleConnections(target.addr, idle):
                rps, p99, errors = wrk(f"http://{target.addr}{path}", connections, SECONDS)
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(f"http://{target.addr}/metrics", timeout=10) as response:
                    assert response.status == 200
                after = (time.perf_counter() - started) * 1000
            except OSError as error:
                # The replica is gone (or stuck): a failure of this run, said in the table.
                after = float("inf")
                DOWN.append((target.name, path, connections, limits.label() if limits else "", gone(target, error)))
                print(f"  replica down after the run: {DOWN[-1]}", flush=True)
                errors += 1
            memory = memory_peak_mib(target.memory_dir()) if limits is not None else None
        finally:
            target.stop()
    return rps, p99, errors, after, memory


DOWN = []  # replicas that did not answer /metrics after a run: (target, path, connections, limits, why)


def gone(target, error):
    """Why a replica did not answer: its exit status, the cgroup's OOM kills, or the error."""
    why = [type(error).__name__]
    process = getattr(target, "process", None)
    if process is not None and process.poll() is not None:
        why.append(f"exit status {process.returncode}")
    directory = target.memory_dir()
    if directory is not None and (directory / "memory.oom_control").exists():
        kills = re.search(r"oom_kill (\d+)", (directory / "memory.oom_control").read_text())
        if kills:
            why.append(f"{kills.group(1)} OOM kills")
    elif directory is not None and (directory / "memory.events").exists():
        kills = re.search(r"oom_kill (\d+)", (directory / "memory.events").read_text())
        if kills:
            why.append(f"{kills.group(1)} OOM kills")
    return ", ".join(why)


def alternating(found, path, connections, args, env=None, idle=0, limits=None):
    """`once` for every target, round by round (--runs rounds): {name: (median requests/s,
    median p99, failed visits summed, slowest /metrics after, highest memory)}."""
    runs = {target.name: [] for target in found}
    for _ in range(args.runs):
        for target in found:
            runs[target.name].append(once(target, path, connections, env, idle, limits))
    out = {}
    for name, results in runs.items():
        rps, p99, errors, after, memory = zip(*results)
        memory = [m for m in memory if m]
        out[name] = (statistics.median(rps), statistics.median(p99), sum(errors), max(after),
                     (max(m[0] for m in memory), max(m[1] for m in memory)) if memory else None)
    return out


def measure(target, path, connections, args, env=None, idle=0):
    return alternating([target], path, connections, args, env, idle)[target.name][:4]


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


def cell(rps, p99, errors, after=None):
    if after == float("inf"):
        return f"{rps:,.0f} · p99 {p99:.1f} ms · **{errors} failed, replica down after the run**"
    return (f"{rps:,.0f} · p99 {p99:.1f} ms · {errors} failed" if errors == 0 else
            f"{rps:,.0f} · p99 {p99:.1f} ms · **{errors} failed**") + \
        (f" · `/metrics` after: {after:.0f} ms" if after is not None else "")


RESULTS = {}  # (section, target name, path, connections, policy/limits label) -> (rps, p99, errors, ...)


def scaling(args, report):
    report.append("## 6. Connections: one replica from 16 to 1 024 connections\n")
    report.append(f"`wrk -t2 -cN -d{SECONDS}s --latency`, {args.runs} round(s), the targets alternating "
                  "within each round, each run on a fresh replica and empty log; requests/s median, p99 ms "
                  "median, failed visits (socket errors, timeouts and non-2xx answers) summed. Open-file limit "
                  "raised (section 9 has the node's 1024:1024). `APPEND_FSYNC=no` here, so the figures show the "
                  "serving path; section 8 prices the sync. At 1 024 connections, the slowest answer to "
                  "`GET /metrics` right after a run.\n")
    found = targets()
    if node.missing:
        report.append(f"The node runtime is left out of this run: {node.missing}.\n")
    report.append("| route | connections | " + " | ".join(t.name for t in found) + " | wasmtime run ÷ native |")
    report.append("|---|---|" + "---|" * len(found) + "---|")
    for path in ("/", "/healthz"):
        for connections in CONNECTIONS:
            results = alternating(found, path, connections, args, {"APPEND_FSYNC": "no"})
            cells = []
            for target in found:
                rps, p99, errors, after, _ = results[target.name]
                RESULTS[("scaling", target.name, path, connections)] = (rps, p99, errors)
                cells.append(cell(rps, p99, errors, after if connections == CONNECTIONS[-1] else None))
            server = results[found[0].name][0]
            native = results[found[-1].name][0]
            report.append(f"| `{path}` | {connections:,} | " + " | ".join(cells) + f" | {server / native:.2f} |")
            print(f"  {path} at {connections}: " + "; ".join(cells), flush=True)
    native = found[-1].name
    for target in found[:-1]:
        name = target.name
        ratio = RESULTS[("scaling", name, "/", 16)][0] / RESULTS[("scaling", native, "/", 16)][0]
        CHECKS.append((f"{name}: `/` at 16 connections ≥ 0.5× native", f"{ratio:.2f}×", ratio >= 0.5))
        p99 = RESULTS[("scaling", name, "/", 16)][1]
        CHECKS.append((f"{name}: `/` p99 ≤ 2 ms at 16 connections", f"{p99:.2f} ms", p99 <= 2))
        ratio = RESULTS[("scaling", name, "/", 256)][0] / RESULTS[("scaling", native, "/", 256)][0]
        CHECKS.append((f"{name}: `/` at 256 connections ≥ 1.0× native", f"{ratio:.2f}×", ratio >= 1.0))
        if target is not found[0]:
            ratio = RESULTS[("scaling", name, "/", 16)][0] / RESULTS[("scaling", found[0].name, "/", 16)][0]
            CHECKS.append((f"{name}: `/` unsynced at 16 connections ≥ 0.8× wasmtime run (same run)",
                           f"{ratio:.2f}×", ratio >= 0.8))
        for path in ("/", "/healthz"):
            base = RESULTS[("scaling", name, path, 16)][0]
            for connections in (256, 1024):
                rps, p99, errors = RESULTS[("scaling", name, path, connections)]
                CHECKS.append((f"{name}: `{path}` at {connections:,} connections ≥ 0.8× its 16-connection rate",
                               f"{rps / base:.2f}×", rps / base >= 0.8))
                CHECKS.append((f"{name}: `{path}` at {connections:,} connections p99 ≤ 50 ms, no failed visits",
                               f"{p99:.1f} ms, {errors} failed", p99 <= 50 and errors == 0))
    report.append("")


def idle(args, report):
    report.append(f"## 7. Idle connections beside {ACTIVE_BESIDE_IDLE} active ones\n")
    report.append(f"N keep-alive connections that each made one request and stay open, then `wrk -t2 "
                  f"-c{ACTIVE_BESIDE_IDLE} -d{SECONDS}s` on `/healthz`; requests/s median of {args.runs} "
                  "alternating round(s), and the active connections' rate with N idle ones ÷ their rate alone. "
                  "`MAX_CONNECTIONS=1100` here: at the default cap (900) the 1 000 idle connections hold 900 slots, "
                  "every answer then carries `Connection: close` so slots rotate, and the 4 active connections "
                  "reconnect for each request; section 11 measures newcomers at that cap.\n")
    found = targets()
    report.append("| server | " + " | ".join(f"{n:,} idle" for n in IDLE) + f" | × at {IDLE[-1]:,} idle |")
    report.append("|---|" + "---|" * len(IDLE) + "---|")
    rates = {target.name: [] for target in found}
    for n in IDLE:
        # 1 000 idle connections and 4 active ones exceed the default cap (900), where answers
        # carry `Connection: close` so slots rotate; this section prices idle connections below it.
        results = alternating(found, "/healthz", ACTIVE_BESIDE_IDLE, args, {"MAX_CONNECTIONS": "1100"}, idle=n)
        for target in found:
            rates[target.name].append(results[target.name][0])
    for target in found:
        kept = rates[target.name][-1] / rates[target.name][0]
        report.append(f"| {target.name} | " + " | ".join(f"{r:,.0f}" for r in rates[target.name]) + f" | {kept:.2f} |")
        print(f"  {target.name}: " + ", ".join(f"{r:,.0f}" for r in rates[target.name]), flush=True)
        if target is not found[-1]:
            CHECKS.append((f"{target.name}: {IDLE[-1]:,} idle connections cost the active ones ≤ 20%",
                           f"{1 - kept:.0%}", kept >= 0.8))
    report.append("")


def durability(args, report):
    report.append("## 8. Durability: `APPEND_FSYNC=no` against `always`\n")
    report.append(f"`GET /` with `wrk -t2 -cN -d{SECONDS}s --latency`, {args.runs} alternating round(s). The "
                  "server component commits the visits of one reactor round in one write and, with `always` "
                  "(the default, as shipped), one `sync-data`; the native baseline appends (and syncs) once per "
                  "visit. ×: `always` ÷ `no` of the same server; ÷ native synced: `always` ÷ native's `always`.\n")
    found = targets()
    report.append("| server | APPEND_FSYNC | 16 connections | 256 connections |")
    report.append("|---|---|---|---|")
    for connections in (16, 256):
        for policy in ("no", "always"):
            results = alternating(found, "/", connections, args, {"APPEND_FSYNC": policy})
            for target in found:
                RESULTS[("durability", target.name, policy, connections)] = results[target.name][:3]
    native = found[-1].name
    for target in found:
        for policy in ("no", "always"):
            cells = []
            for connections in (16, 256):
                rps, p99, errors = RESULTS[("durability", target.name, policy, connections)]
                text = f"{rps:,.0f}/s · p99 {p99:.1f} ms" + (f" · **{errors} failed**" if errors else "")
                if policy == "always":
                    unsynced = RESULTS[("durability", target.name, "no", connections)][0]
                    text += f" · {rps / unsynced:.2f}×"
                    if target is not found[-1]:
                        synced_native = RESULTS[("durability", native, "always", connections)][0]
                        text += f" · {rps / synced_native:.1f}× native synced"
                cells.append(text)
            report.append(f"| {target.name} | `{policy}` | " + " | ".join(cells) + " |")
            print(f"  {target.name} APPEND_FSYNC={policy}: " + ", ".join(cells), flush=True)
    for target in found[:-1]:
        for connections, floor in ((256, 0.85), (16, 0.7)):
            synced = RESULTS[("durability", target.name, "always", connections)][0]
            unsynced = RESULTS[("durability", target.name, "no", connections)][0]
            native_synced = RESULTS[("durability", native, "always", connections)][0]
            CHECKS.append((f"{target.name}: as shipped (`always`) at {connections} connections ≥ {floor}× "
                           "its unsynced rate", f"{synced / unsynced:.2f}× ({synced / native_synced:.1f}× "
                           "native synced)", synced / unsynced >= floor))
    report.append("")


def deployed(args, report):
    manifest = Limits.manifest()
    # The CPU limit is measured both ways, whatever the manifest says, so the choice stays priced.
    conditions = [Limits(manifest.cpu or 0.5, manifest.memory), Limits(None, manifest.memory)]
    report.append("## 9. As deployed: the manifest's limits and the node's open-file limit\n")
    report.append(f"`GET /` with `wrk -t2 -cN -d{SECONDS}s --latency`, `APPEND_FSYNC=always` (the shipped "
                  f"default), {args.runs} alternating round(s). Each replica runs with RLIMIT_NOFILE 1024:1024 (a "
                  "node's default: `prlimit` for processes, ctr's default spec for the shim) in a cgroup with the "
                  "memory limit of k8s/statefulset.yaml "
                  f"({manifest.memory >> 20 if manifest.memory else 'none'}Mi) and either a CFS CPU quota of "
                  f"{(manifest.cpu or 0.5) * 1000:.0f}m or none (the manifest has "
                  f"{'a ' + format(manifest.cpu * 1000, '.0f') + 'm CPU limit' if manifest.cpu else 'no CPU limit'}). "
                  "Memory: the cgroup's peak (the log's page cache included) / its anonymous memory at the end, "
                  "MiB, highest over the runs.\n")
    found = targets()
    report.append("| server | limits | 16 connections | 256 connections | 1 024 connections | memory peak / anon MiB |")
    report.append("|---|---|---|---|---|---|")
    for limits in conditions:
        for connections in (16, 256, 1024):
            results = alternating(found, "/", connections, args, {"APPEND_FSYNC": "always"}, limits=limits)
            for target in found:
                RESULTS[("deployed", target.name, limits.label(), connections)] = results[target.name]
    for target in found:
        for limits in conditions:
            cells, memory = [], []
            for connections in (16, 256, 1024):
                rps, p99, errors, _, mem = RESULTS[("deployed", target.name, limits.label(), connections)]
                cells.append(cell(rps, p99, errors))
                if mem:
                    memory.append(mem)
            mem = (f"{max(m[0] for m in memory):.1f} / {max(m[1] for m in memory):.1f}" if memory else "–")
            report.append(f"| {target.name} | {limits.label()} | " + " | ".join(cells) + f" | {mem} |")
            print(f"  {target.name}, {limits.label()}: " + "; ".join(cells) + f"; {mem}", flush=True)
            if target is not found[-1]:
                rps, p99, errors, _, _ = RESULTS[("deployed", target.name, limits.label(), 1024)]
                CHECKS.append((f"{target.name}, {limits.label()}: 0 failed visits at 1 024 connections",
                               f"{errors} failed, p99 {p99:.1f} ms", errors == 0))
                if target is found[0] and limits.cpu is None:
                    CHECKS.append((f"{target.name}, {limits.label()}: p99 ≤ 50 ms at 1 024 connections",
                                   f"{p99:.1f} ms", p99 <= 50))
    report.append("")


SECTIONS = {"6": scaling, "7": idle, "8": durability, "9": deployed}
HEADINGS = {"6": "## 6. ", "7": "## 7. ", "8": "## 8. ", "9": "## 9. "}


def step(args, report, sections=("6", "7", "8", "9")):
    # 1 024 connections for wrk, 1 000 idle sockets here, and the replica's own.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    started = time.perf_counter()
    for key in sections:
        part = SECTIONS[key]
        print(part.__name__, flush=True)
        down, failures = len(DOWN), len(FAILURES)
        part(args, report)
        if len(FAILURES) > failures:
            kinds = {}
            for _, counts in FAILURES[failures:]:
                for kind, count in counts.items():
                    kinds[kind] = kinds.get(kind, 0) + count
            report.insert(len(report) - 1, "Failed visits in this section, by kind (wrk's 2 s timeout, "
                          "connections reset or refused, non-2xx answers): " +
                          ", ".join(f"{kind} {count:,}" for kind, count in kinds.items()) + ".\n")
        if len(DOWN) > down:
            report.insert(len(report) - 1, "Replicas that did not answer `GET /metrics` after their run (counted as "
                          "one failed visit each): " + "; ".join(
                              f"{name}, `{path}` at {connections:,}{', ' + label if label else ''}: {why}"
                              for name, path, connections, label, why in DOWN[down:]) + ".\n")
    print(f"  load: {time.perf_counter() - started:.0f} s", flush=True)
