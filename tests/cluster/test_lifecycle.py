"""scripts/cluster.sh itself: a second `up` changes nothing, `status` reports a ready API server
and node, and `down` (run on a cluster of its own, after every other test of the session) leaves
no process, namespace, mount, cgroup or file behind."""

import subprocess

from cluster_helpers import CLUSTER_SH, leftovers


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


def test_down_leaves_nothing(cluster):
    # A full down/up cycle in the middle of the session: what `down` leaves is checked here,
    # and the cluster comes back for the tests after this one.
    down = subprocess.run([str(CLUSTER_SH), "down"], capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stderr
    assert leftovers(cluster.state) == []
    up = subprocess.run([str(CLUSTER_SH), "up"], capture_output=True, text=True, timeout=1800)
    assert up.returncode == 0, up.stderr[-3000:]
