"""Helpers for the tests on the real single-node cluster of scripts/cluster.sh.

The session's first test that asks for `cluster` brings it up (`scripts/cluster.sh up`, which
builds nothing when the cache is warm) and the session takes it down again, unless
CLUSTER_KEEP=1 (then a running cluster is reused and left running). Everything the tests send
goes to loopback or to addresses inside the node's own network namespace.
"""

import gzip
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SH = ROOT / "scripts" / "cluster.sh"
NETNS = os.environ.get("CLUSTER_NETNS", "spin-visits-node")
LABELS = "app.kubernetes.io/name=spin-visits"
PODS = ["visits-0", "visits-1", "visits-2"]


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
    parts = ["pause", "kubernetes", "containerd", "runc", "cni", "kine", "coredns", "registry"]
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

    def pods(self, labels=LABELS, namespace="default"):
        return {p["metadata"]["name"]: p
                for p in self.json("get", "pods", "-n", namespace, "-l", labels)["items"]}

    def all_ready(self, names, labels=LABELS, namespace="default"):
        found = self.pods(labels, namespace)
        return found if all(n in found and ready(found[n]) for n in names) else None

    def http(self, url, *curl_args, timeout=10):
        """curl from inside the node's namespace: (status, headers, body)."""
        out = self.in_node("curl", "-s", "-i", "--max-time", str(timeout), *curl_args, url,
                           timeout=timeout + 10).stdout
        head, _, body = out.replace("\r\n", "\n").partition("\n\n")
        status = int(head.split()[1])
        headers = dict(line.split(": ", 1) for line in head.splitlines()[1:] if ": " in line)
        return status, {k.lower(): v for k, v in headers.items()}, body

    def claim_dir(self, claim, namespace="default"):
        """The host directory of a Bound claim's local PersistentVolume."""
        volume = self.json("get", "pvc", "-n", namespace, claim)["spec"]["volumeName"]
        return Path(self.json("get", "pv", volume)["spec"]["local"]["path"])

    def ctr(self, *args):
        """containerd's ctr inside the node (its network and mount namespaces), namespace k8s.io."""
        keydir, _ = cluster_env()
        holder = (self.state / "run" / "holder.pid").read_text().strip()
        return subprocess.run(
            ["nsenter", "--target", holder, "--net", "--mount", "--", str(keydir / "bin" / "ctr"),
             "--address", str(self.state / "containerd" / "containerd.sock"),
             "--namespace", "k8s.io", *args],
            check=True, capture_output=True, text=True, timeout=60).stdout

    def task_pid(self, pod):
        """The host pid of a pod's (first) container's task, as containerd reports it."""
        cid = pod["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
        tasks = dict(line.split()[:2] for line in self.ctr("task", "ls").splitlines()[1:])
        return int(tasks[cid])

    def deploy_server(self, replicas=PODS):
        """`kubectl apply -k k8s/` (a no-op when it is there already) and its pods Ready."""
        self.kubectl("apply", "-k", str(ROOT / "k8s"))
        return self.wait(f"{len(replicas)} Ready pods", lambda: self.all_ready(replicas),
                         timeout=300)


def claim_lines(directory):
    """Every visit a claim holds, oldest first: the sealed gzip segments, then visits.txt."""
    lines = []
    for segment in sorted(directory.glob("visits.*.txt.gz")):
        lines += gzip.decompress(segment.read_bytes()).decode().splitlines()
    active = directory / "visits.txt"
    if active.exists():
        lines += active.read_text().splitlines()
    return lines


def ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod["status"].get("conditions", []))


def leftovers(state):
    """What a `down` should have removed and did not."""
    found = []
    if state.exists():
        found.append(f"state directory {state}")
    if NETNS in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout:
        found.append(f"network namespace {NETNS}")
    mounts = Path("/proc/mounts").read_text()
    found += [line for line in mounts.splitlines() if str(state) in line]
    found += [str(p) for p in Path("/sys/fs/cgroup").glob("*/spin-visits-node")]
    # The kubelet's log directories (inside the node, /var/log is under the state directory).
    found += [d for d in ("/var/log/pods", "/var/log/containers") if Path(d).exists()]
    keydir = str(cluster_env()[0])
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(state) in cmdline or keydir in cmdline:
            found.append(f"process {pid}: {cmdline[:200]}")
    return found
