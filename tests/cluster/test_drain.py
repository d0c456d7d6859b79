"""`kubectl drain` of the one node: kubectl evicts through the eviction API, and the API server
refuses the evictions that would break the PodDisruptionBudget (maxUnavailable: 1). On one node
the evicted replica cannot come back while the node is cordoned, so the drain stops at the
budget: one replica out, two serving, until `--timeout` and `kubectl uncordon`."""

from cluster_helpers import PODS, ready

NODE = "spin-visits-node"


def test_drain_stops_at_the_disruption_budget(cluster):
    before = cluster.deploy_server()
    try:
        drain = cluster.kubectl("drain", NODE, "--ignore-daemonsets", "--delete-emptydir-data",
                                "--timeout=25s", timeout=120, check=False)
        out = drain.stdout + drain.stderr
        assert drain.returncode != 0, out
        # The API server's own refusal (429 TooManyRequests from the eviction subresource).
        assert "Cannot evict pod as it would violate the pod's disruption budget" in out, out
        node = cluster.json("get", "node", NODE)
        assert node["spec"].get("unschedulable") is True
        now = cluster.pods()
        serving = [n for n in PODS if n in now and ready(now[n])
                   and now[n]["metadata"]["uid"] == before[n]["metadata"]["uid"]]
        assert len(serving) == 2, {n: p["status"].get("phase") for n, p in now.items()}
        pdb = cluster.json("get", "pdb", "visits")["status"]
        assert pdb["disruptionsAllowed"] == 0 and pdb["currentHealthy"] == 2, pdb
    finally:
        cluster.kubectl("uncordon", NODE)
    cluster.wait("three Ready pods after uncordon", lambda: cluster.all_ready(PODS), timeout=180)
    cluster.kubectl("-n", "kube-system", "wait", "--for=condition=Available",
                    "deployment/coredns", "--timeout=120s", timeout=150)
