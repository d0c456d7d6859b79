"""The two deployments side by side, each as its node runs it, as shipped: the server component
(k8s/) on runwasi's wasmtime shim 0.6.0, and the Spin component's SQLite build (k8s/spin/) on
containerd-shim-spin v0.24.0 (Spin 3.6.3). One replica each, on the host's network, a fresh
claim directory per run, the manifest's memory limit as the container's cgroup (no CPU limit,
as shipped) and ctr's default open-file limit 1024:1024. Rounds alternate between the two.

Per run: `wrk` on `/` (every request a visit) at 16 and 256 connections for SECONDS, then the
cgroup's peak memory. Then syncs per visit: `strace -f` on the replica's task counts fsync and
fdatasync calls while a fixed number of visits is made at 16 connections.

    PATH=/work/shared/bin:$PATH python3 bench/spin_shim.py [--runs 2] [--seconds 5]

Prints a Markdown table; the load average before and after, since the machine is shared.
bench/run.py runs `step` as BENCHMARKS.md's section 12.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import load
import node
from common import CHECKS, ROOT, WrkRun, free_port, wait_for_200, without_backtraces

sys.path.insert(0, str(ROOT / "tests" / "k8s"))
import node_runtime  # noqa: E402

SPIN_IMAGE = "localhost/spin-visits-spin:bench"
RUNTIME_CONFIG = ROOT / "k8s" / "spin" / "runtime-config.toml"


def manifest_limits(directory):
    import yaml
    docs = yaml.safe_load_all((directory / "statefulset.yaml").read_text())
    sts = next(d for d in docs if d and d.get("kind") == "StatefulSet")
    limits = sts["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    return load.Limits(None, int(load.quantity(limits["memory"])))


class SpinShimNode:
    """containerd with containerd-shim-spin and the image of spin-image/Dockerfile."""

    name = "Spin component, SQLite (containerd-shim-spin 0.24.0, Spin 3.6.3)"

    def __init__(self):
        shim = os.environ.get(node_runtime.SPIN_SHIM_ENV) or shutil.which(node_runtime.SPIN_SHIM)
        if not shim:
            raise SystemExit(f"{node_runtime.SPIN_SHIM} not on PATH (PATH=/work/shared/bin:$PATH)")
        self.base = Path(tempfile.mkdtemp(prefix="spin-visits-bench-spin-"))
        archive = node_runtime.build_image(self.base, SPIN_IMAGE, dockerfile="spin-image/Dockerfile")
        self.containerd = node_runtime.Containerd(self.base / "containerd", Path(shim).resolve(),
                                                  runtime=node_runtime.SPIN_RUNTIME)
        self.containerd.import_image(archive)
        self.entrypoint = node_runtime.image_config(archive)["Entrypoint"]
        self.base_spec = json.loads(subprocess.run(["ctr", "oci", "spec"], check=True,
                                                   capture_output=True, text=True).stdout)

    def start(self, data_dir, env, limits):
        self.addr = f"127.0.0.1:{free_port()}"
        os.chmod(data_dir, 0o777)
        spec = json.loads(json.dumps(self.base_spec))
        spec["process"]["args"] = list(self.entrypoint)
        spec["process"]["env"] = [f"{key}={value}" for key, value in
                                  {"SPIN_HTTP_LISTEN_ADDR": self.addr,
                                   "SPIN_VARIABLE_POD_NAME": "bench-0", **env}.items()]
        soft, hard = limits.nofile
        spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": hard, "soft": soft}]
        spec["linux"]["resources"] = {**spec["linux"].get("resources", {}),
                                      "memory": {"limit": limits.memory}}
        spec["root"] = {"path": "rootfs", "readonly": True}
        self.cgroup = f"{node_runtime.CGROUP_PARENT}/{uuid.uuid4().hex[:8]}"
        spec["linux"]["cgroupsPath"] = f"/{self.cgroup}"
        spec["linux"]["namespaces"] = [ns for ns in spec["linux"]["namespaces"] if ns["type"] != "network"]
        spec["mounts"] += [
            {"destination": "/data", "type": "bind", "source": str(data_dir), "options": ["rbind", "rw"]},
            {"destination": "/runtime-config.toml", "type": "bind", "source": str(RUNTIME_CONFIG),
             "options": ["rbind", "ro"]},
        ]
        self.pod = self.containerd.pod(spec, SPIN_IMAGE, f"bench-{uuid.uuid4().hex[:8]}", address=self.addr)
        wait_for_200(f"http://{self.addr}/readyz")

    def memory_dir(self):
        return node.NodeRuntime.memory_dir(self)

    def stop(self):
        self.pod.remove()

    def close(self):
        self.containerd.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def visits_total(addr):
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as response:
        return int(re.search(r"^visits_total\{[^}]*\} (\d+)$", response.read().decode(), re.M).group(1))


def one_run(target, limits, connections, seconds, env):
    with tempfile.TemporaryDirectory() as data_dir:
        target.start(Path(data_dir), env, limits)
        try:
            run = WrkRun(f"http://{target.addr}/", connections, seconds)
            errors = run.socket_errors + run.non_2xx
            recorded = visits_total(target.addr)
            peak, anon = load.memory_peak_mib(target.memory_dir())
        finally:
            target.stop()
    return run.rps, run.p99, errors, recorded, peak


def syncs_per_visit(target, limits, visits=2000):
    """fsync + fdatasync calls of the replica's task per visit, under strace -f, as shipped."""
    env = {"APPEND_FSYNC": "always"} if target.name.startswith("server") else {}
    with tempfile.TemporaryDirectory() as data_dir:
        target.start(Path(data_dir), env, limits)
        try:
            pid = target.pod.task_pid()
            trace = Path(data_dir).parent / f"strace-{uuid.uuid4().hex[:6]}.txt"
            # Every thread of the task (strace -f -p follows only the named one's new children).
            threads = [arg for tid in os.listdir(f"/proc/{pid}/task") for arg in ("-p", tid)]
            strace = subprocess.Popen(["strace", "-f", "-c", "-e", "trace=fsync,fdatasync,sync_file_range",
                                       "-o", str(trace), *threads],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
            before = visits_total(target.addr)
            subprocess.run(["wrk", "-t2", "-c16", "-d60s", "-s", str(ROOT / "bench" / "stop_after.lua"),
                            f"http://{target.addr}/"], env={**os.environ, "STOP_AFTER": str(visits)},
                           check=True, capture_output=True)
            made = visits_total(target.addr) - before
            strace.terminate()
            strace.wait()
            text = trace.read_text()
            trace.unlink()
        finally:
            target.stop()
    calls = {m.group(2): int(m.group(1)) for m in re.finditer(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", text, re.M)}
    # strace -c ends with a "total" row: counted once, not again.
    calls.pop("total", None)
    return sum(calls.values()) / made, calls, made


# As shipped (always) and unsynced: the server reads APPEND_FSYNC, the Spin component its Spin
# variable (SQLite's synchronous = NORMAL).
SETTINGS = {"always": ({"APPEND_FSYNC": "always"}, {"SPIN_VARIABLE_APPEND_FSYNC": "always"}),
            "no": ({"APPEND_FSYNC": "no"}, {"SPIN_VARIABLE_APPEND_FSYNC": "no"})}


def measure(runs, seconds, strace=True):
    """Rows (name, fsync, connections, visits/s, p99 ms, failed, peak MiB, limit MiB) and syncs
    per visit by name; raises SystemExit when a shim is missing."""
    server = node.NodeRuntime.find("release")
    if server is None:
        raise SystemExit(f"no wasmtime shim: {node.missing}")
    spin = SpinShimNode()
    targets = [(server, manifest_limits(ROOT / "k8s")), (spin, manifest_limits(ROOT / "k8s" / "spin"))]
    rows, syncs = [], {}
    try:
        for fsync, envs in SETTINGS.items():
            for connections in (16, 256):
                results = {target.name: [] for target, _ in targets}
                for _ in range(runs):
                    for (target, limits), env in zip(targets, envs):
                        result = one_run(target, limits, connections, seconds, env)
                        print(f"  {target.name} {fsync} c{connections}: {result}", flush=True)
                        results[target.name].append(result)
                for target, limits in targets:
                    rps, p99, errors, recorded, peak = zip(*results[target.name])
                    rows.append((target.name, fsync, connections, statistics.median(rps),
                                 statistics.median(p99), sum(errors), max(peak), limits.memory >> 20))
        if strace:
            for target, limits in targets:
                syncs[target.name] = syncs_per_visit(target, limits)
                print(f"  {target.name} syncs: {syncs[target.name]}", flush=True)
    finally:
        spin.close()
    return server.name, spin.name, rows, syncs


def table(rows):
    lines = ["| replica | APPEND_FSYNC | connections | visits/s | p99 ms | failed | peak memory MiB (limit) |",
             "|---|---|---|---|---|---|---|"]
    for name, fsync, connections, rps, p99, errors, peak, limit in rows:
        lines.append(f"| {name} | `{fsync}` | {connections} | {rps:,.0f} | {p99:.1f} | {errors} | "
                     f"{peak:.1f} ({limit}) |")
    return lines


def step(args, report):
    """Appends BENCHMARKS.md's section 12 to `report`: args.runs alternating runs of args.seconds."""
    print("spin_shim", flush=True)
    without_backtraces()
    report.append("## 12. The Spin component on containerd-shim-spin beside the server component on runwasi\n")
    report.append(
        "Each deployment as its node runs it, as shipped: the server component's image (k8s/) on runwasi's "
        "release shim (containerd-shim-wasmtime 0.6.0, wasmtime 27) and the Spin component's SQLite build "
        "(k8s/spin/, spin-image/) on containerd-shim-spin 0.24.0 (Spin 3.6.3), each in a private containerd, "
        "one replica on the host's network, a fresh claim directory per run, the manifest's memory limit as "
        "the container's cgroup (no CPU limit) and ctr's default open-file limit 1024:1024 (bench/spin_shim.py). "
        f"`wrk -t2 -cN -d{args.seconds}s --latency` on `/` (every request a visit), {args.runs} alternating "
        "run(s); visits/s and p99 median, failed (socket errors and non-2xx) summed, peak memory the "
        "cgroup's highest over the runs. `APPEND_FSYNC` is the server's setting and the Spin component's "
        "Spin variable (SQLite's `synchronous`).\n")
    server_name, spin_name, rows, syncs = measure(args.runs, args.seconds)
    report.extend(table(rows))
    by = {(r[0], r[1], r[2]): r for r in rows}
    report.append("")
    report.append("Spin ÷ server, visits/s: " + "; ".join(
        f"`{fsync}` at {c} connections {by[(spin_name, fsync, c)][3] / by[(server_name, fsync, c)][3]:.3f}×"
        for fsync in SETTINGS for c in (16, 256)) + ".\n")
    report.append("Syncs per visit, as shipped (`always`): fsync, fdatasync and sync_file_range calls of the "
                  "replica's task under `strace -f` while 2 000 visits are made at 16 connections: " + "; ".join(
                      f"{name} **{per_visit:.2f}** ({', '.join(f'{k} {v:,}' for k, v in calls.items())} over "
                      f"{made:,} visits)" for name, (per_visit, calls, made) in syncs.items()) + ".\n")
    for name in (server_name, spin_name):
        peak, limit = max((r[6], r[7]) for r in rows if r[0] == name)
        CHECKS.append((f"{name}: peak memory up to 256 connections within the manifest's limit ({limit} MiB)",
                       f"{peak:.1f} MiB", peak < limit))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--no-strace", action="store_true")
    args = parser.parse_args()
    without_backtraces()
    load_before = os.getloadavg()
    server_name, spin_name, rows, syncs = measure(args.runs, args.seconds, not args.no_strace)
    load_after = os.getloadavg()
    print(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
          f"{os.cpu_count()} cores; medians of {args.runs} alternating {args.seconds}-s runs\n")
    print("\n".join(table(rows)))
    by = {(r[0], r[1], r[2]): r[3] for r in rows}
    for fsync in SETTINGS:
        for connections in (16, 256):
            print(f"\nSpin ÷ server, {fsync}, {connections} connections: "
                  f"{by[(spin_name, fsync, connections)] / by[(server_name, fsync, connections)]:.3f}×")
    for name, (per_visit, calls, made) in syncs.items():
        print(f"\n{name}, APPEND_FSYNC=always: {per_visit:.2f} syncs per visit ({calls} over {made} visits)")


if __name__ == "__main__":
    main()
