"""scripts/cluster.sh itself: a second `up` changes nothing, `status` reports a ready API server
and node, and `down` (run on a cluster of its own, after every other test of the session) leaves
no process, namespace, mount, cgroup or file behind."""

import os
import subprocess
from pathlib import Path

from cluster_helpers import CLUSTER_SH, NETNS, cluster_env


def test_second_up_is_idempotent(cluster):
    pids_before = sorted(p.read_text() for p in (cluster.state / "run").glob("*.pid"))
    again = subprocess.run([str(CLUSTER_SH), "up"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.strip().splitlines()[-1] == f"export KUBECONFIG={cluster.kubeconfig}"
    pids_after = sorted(p.read_text() for p in (cluster.state / "run").glob("*.pid"))
    assert pids_after == pids_before


def test_status_reports_ready(cluster):
    status = subprocess.run([str(CLUSTER_SH), "status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "apiserver readyz: ok" in status.stdout
    node = cluster.json("get", "node", "spin-visits-node")
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://2.")


def leftovers(state):
    found = []
    if state.exists():
        found.append(f"state directory {state}")
    if NETNS in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout:
        found.append(f"network namespace {NETNS}")
    mounts = Path("/proc/mounts").read_text()
    found += [line for line in mounts.splitlines() if str(state) in line]
    found += [str(p) for p in Path("/sys/fs/cgroup").glob("*/spin-visits-node")]
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(state) in cmdline or str(cluster_env()[0]) in cmdline:
            found.append(f"process {pid}: {cmdline[:200]}")
    return found


def test_down_leaves_nothing(cluster):
    # A full down/up cycle in the middle of the session: what `down` leaves is checked here,
    # and the cluster comes back for the tests after this one.
    down = subprocess.run([str(CLUSTER_SH), "down"], capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stderr
    assert leftovers(cluster.state) == []
    up = subprocess.run([str(CLUSTER_SH), "up"], capture_output=True, text=True, timeout=1800)
    assert up.returncode == 0, up.stderr[-3000:]
