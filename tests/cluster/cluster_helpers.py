"""Helpers for the tests on the real single-node cluster of scripts/cluster.sh.

The session's first test that asks for `cluster` brings it up (`scripts/cluster.sh up`, which
builds nothing when the cache is warm) and the session takes it down again, unless
CLUSTER_KEEP=1 (then a running cluster is reused and left running). Everything the tests send
goes to loopback or to addresses inside the node's own network namespace.
"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SH = ROOT / "scripts" / "cluster.sh"
NETNS = os.environ.get("CLUSTER_NETNS", "spin-visits-node")


def cluster_env():
    """versions/paths as scripts/cluster.sh computes them (one place, cluster/lib.sh)."""
    out = subprocess.run(
        ["bash", "-c", 'source "$0"; echo "$CLUSTER_KEYDIR"; echo "$CLUSTER_STATE"',
         str(ROOT / "cluster" / "lib.sh")],
        check=True, capture_output=True, text=True).stdout.split("\n")
    return Path(out[0]), Path(out[1])


def built_or_skip():
    if os.geteuid() != 0:
        pytest.skip("the cluster tests start a Kubernetes node (network namespace, mounts, "
                    "cgroups), so they need root, as CI has")
    keydir, _ = cluster_env()
    parts = ["pause", "kubernetes", "containerd", "runc", "cni", "kine", "coredns"]
    missing = [p for p in parts if not (keydir / "stamps" / p).exists()]
    if missing and os.environ.get("CLUSTER_BUILD") != "1":
        pytest.skip(f"cluster binaries not built ({', '.join(missing)} missing under {keydir}): "
                    "run cluster/build.sh (about 30 minutes cold on 2 cores) or set CLUSTER_BUILD=1")


class Cluster:
    def __init__(self, kubeconfig, state):
        self.kubeconfig = kubeconfig
        self.state = state

    def kubectl(self, *args, check=True, timeout=120, input=None):
        return subprocess.run(
            ["kubectl", "--kubeconfig", self.kubeconfig, *args], check=check, timeout=timeout,
            capture_output=True, text=True, input=input)

    def json(self, *args):
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def in_node(self, *cmd, check=True, timeout=60):
        """A command in the node's network namespace (where Service and pod addresses exist)."""
        return subprocess.run(["nsenter", f"--net=/run/netns/{NETNS}", "--", *cmd],
                              check=check, timeout=timeout, capture_output=True, text=True)

    def wait(self, what, predicate, timeout=180, interval=1.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
