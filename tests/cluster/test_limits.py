"""The pod's open-file limit as the real containerd 2 gives it, read from its task's
/proc/PID/limits (the task found with ctr inside the node), and 1 100 concurrent connections
to one pod's address answered with no non-2xx (wrk, run inside the node's namespace)."""

import re
import subprocess
from pathlib import Path

from cluster_helpers import NETNS, cluster_env

CONNECTIONS = 1100


def node_ctr(cluster, *args):
    keydir, state = cluster_env()
    holder = (state / "run" / "holder.pid").read_text().strip()
    return subprocess.run(
        ["nsenter", "--target", holder, "--net", "--mount", "--", str(keydir / "bin" / "ctr"),
         "--address", str(state / "containerd" / "containerd.sock"), "--namespace", "k8s.io",
         *args], check=True, capture_output=True, text=True, timeout=60).stdout


def nofile(pid):
    line = next(l for l in Path(f"/proc/{pid}/limits").read_text().splitlines()
                if l.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    return int(soft), hard


def test_the_pod_gets_1024_open_files_soft(cluster):
    pods = cluster.deploy_server()
    container = pods["visits-0"]["status"]["containerStatuses"][0]["containerID"]
    cid = container.removeprefix("containerd://")
    tasks = {line.split()[0]: line.split()[1] for line in node_ctr(cluster, "task", "ls").splitlines()[1:]}
    pid = tasks[cid]
    # README's Known limits, docs/operations.md and MAX_CONNECTIONS (900) rely on this.
    assert nofile(pid)[0] == 1024, Path(f"/proc/{pid}/limits").read_text()


def test_1100_connections_to_one_pod_get_no_error_answer(cluster):
    pods = cluster.deploy_server()
    ip = pods["visits-2"]["status"]["podIP"]
    run = subprocess.run(
        ["nsenter", f"--net=/run/netns/{NETNS}", "--", "nice", "-n", "5", "wrk", "-t", "2",
         "-c", str(CONNECTIONS), "-d", "10s", "--timeout", "30s", f"http://{ip}:8080/"],
        capture_output=True, text=True, timeout=120)
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    done = int(re.search(r"(\d+) requests in", run.stdout)[1])
    assert done > CONNECTIONS, run.stdout
    assert "Non-2xx" not in run.stdout, run.stdout
    assert "Socket errors" not in run.stdout, run.stdout
