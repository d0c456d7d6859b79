"""`kubectl rollout restart statefulset/visits` under keep-alive load through the Service's
ClusterIP, from inside the node: the real StatefulSet controller replaces the pods one at a
time, the real kubelet runs each pod's preStop hook (GET /drain) and kube-proxy removes the
endpoint. No request may fail or need sending again, no preStop hook may fail, and every
acknowledged visit is on its claim exactly once."""

import json
import subprocess
from collections import Counter
from pathlib import Path

from cluster_helpers import NETNS, PODS, claim_lines

LOAD = Path(__file__).with_name("keepalive_load.py")
CLIENTS = 8


def test_rollout_restart_under_keep_alive_load_loses_nothing(cluster, tmp_path):
    before_pods = cluster.deploy_server()
    service_ip = cluster.json("get", "service", "visits")["spec"]["clusterIP"]
    dirs = {name: cluster.claim_dir(f"data-{name}") for name in PODS}
    before = {name: len(claim_lines(d)) for name, d in dirs.items()}

    stop = tmp_path / "stop"
    load = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{NETNS}", "--", "python3", str(LOAD), service_ip, "80",
         str(CLIENTS), str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        cluster.wait("load reaching the pods",
                     lambda: sum(len(claim_lines(d)) for d in dirs.values()) > sum(before.values()) + 50,
                     timeout=30, interval=0.5)
        cluster.kubectl("rollout", "restart", "statefulset/visits")
        status = cluster.kubectl("rollout", "status", "statefulset/visits", "--timeout=300s",
                                 timeout=330, check=False)
        assert status.returncode == 0, status.stdout + status.stderr
        after_pods = cluster.wait("three Ready pods", lambda: cluster.all_ready(PODS), timeout=60)
        # A little load on the new pods too, then stop.
        settled = sum(len(claim_lines(d)) for d in dirs.values())
        cluster.wait("load reaching the new pods",
                     lambda: sum(len(claim_lines(d)) for d in dirs.values()) > settled + 50,
                     timeout=30, interval=0.5)
    finally:
        stop.touch()
        out, err = load.communicate(timeout=60)
    assert load.returncode == 0, err[-3000:]
    result = json.loads(out)

    for name in PODS:
        assert (after_pods[name]["metadata"]["uid"] != before_pods[name]["metadata"]["uid"]), name
        # No old pod's preStop hook (GET /drain) failed, by the kubelet's own events.
        failed = cluster.json("get", "events", "--field-selector",
                              f"reason=FailedPreStopHook,involvedObject.uid={before_pods[name]['metadata']['uid']}")
        assert failed["items"] == [], [e["message"] for e in failed["items"]]
    acks = result["acks"]
    print(f"{len(acks)} acknowledged visits, {len(result['failures'])} failed, "
          f"retried {result['retried']}, closes {result['closes']}")
    assert result["failures"] == [], result["failures"][:10]
    # A drain ends busy connections with `Connection: close` and idle ones only after a
    # second idle, so no request meets a connection closed under it (none is sent again);
    # and every persistent client's connection was ended by a drain, not a reset.
    assert result["retried"] == {}, result["retried"]
    assert sum(result["closes"].values()) > 0, result["closes"]
    assert len(acks) > 200, "too little load to say anything"
    assert set(name for name, *_ in acks) == set(PODS)

    # Every acknowledged visit exactly once on its claim: its count is its line number there
    # and the line holds the time its page showed; and no line that nobody was answered for.
    lines = {name: claim_lines(d) for name, d in dirs.items()}
    shown = Counter((name, count) for name, _, count in acks)
    assert [k for k, n in shown.items() if n > 1] == []
    for name, stamp, count in acks:
        assert 0 < count <= len(lines[name]) and lines[name][count - 1] == stamp, (name, count, stamp)
    for name in PODS:
        assert len(lines[name]) - before[name] == sum(1 for n, *_ in acks if n == name), name
    # What each pod answers agrees with its claim.
    for name, pod in after_pods.items():
        status, headers, _ = cluster.http(f"http://{pod['status']['podIP']}:8080/visits?tail=1")
        assert status == 200
        assert int(headers["x-visit-count"]) == len(lines[name])
