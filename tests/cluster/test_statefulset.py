"""`kubectl apply -k k8s/` on the real node of scripts/cluster.sh: the API server, the
StatefulSet and PV controllers, the scheduler, the kubelet with containerd 2 and runwasi's
wasmtime shim behind the RuntimeClass, kube-proxy and CoreDNS, none of them played by us."""

import json
import re
from collections import Counter

import pytest

from cluster_helpers import PODS


def ready_time(pod):
    (c,) = [c for c in pod["status"]["conditions"] if c["type"] == "Ready"]
    return c["lastTransitionTime"]


@pytest.fixture(scope="module")
def deployed(cluster):
    # Pods made by an earlier module's rollout or scale say nothing about Parallel: start
    # from a new StatefulSet (the claims are retained and bound again).
    cluster.kubectl("delete", "statefulset", "visits", "--ignore-not-found", "--wait=true",
                    timeout=120)
    cluster.wait("the old pods gone", lambda: not cluster.pods(), timeout=120)
    return cluster, cluster.deploy_server()


def test_three_pods_on_the_wasm_runtime_class_with_bound_claims(deployed):
    cluster, found = deployed
    for name in PODS:
        spec = found[name]["spec"]
        assert spec["runtimeClassName"] == "wasmtime"
        assert found[name]["status"]["phase"] == "Running"
    # Parallel: every pod was created before any of them turned Ready.
    created = max(found[n]["metadata"]["creationTimestamp"] for n in PODS)
    assert created <= min(ready_time(found[n]) for n in PODS)
    claims = {c["metadata"]["name"]: c for c in cluster.json("get", "pvc")["items"]}
    volumes = set()
    for name in PODS:
        claim = claims[f"data-{name}"]
        assert claim["status"]["phase"] == "Bound"
        volumes.add(claim["spec"]["volumeName"])
    assert len(volumes) == 3


def test_security_context_as_written_and_claim_writable(deployed):
    cluster, found = deployed
    spec = found["visits-0"]["spec"]
    assert spec["securityContext"]["runAsUser"] == 65532
    assert spec["securityContext"]["fsGroup"] == 65532
    assert spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    ip = found["visits-0"]["status"]["podIP"]
    status, headers, body = cluster.http(f"http://{ip}:8080/")
    assert status == 200, body
    assert headers["x-served-by"] == "visits-0"
    # Written as runAsUser, in the group fsGroup gave the claim (the setgid directory).
    written = (cluster.claim_dir("data-visits-0") / "visits.txt").stat()
    assert (written.st_uid, written.st_gid) == (65532, 65532), (written.st_uid, written.st_gid)


def pod_counts(cluster, found):
    counts = {}
    for name in PODS:
        ip = found[name]["status"]["podIP"]
        status, headers, _ = cluster.http(f"http://{ip}:8080/visits")
        assert status == 200
        counts[name] = int(headers["x-visit-count"])
    return counts


def test_visits_through_the_cluster_ip_land_on_each_claim_once(deployed):
    cluster, found = deployed
    service_ip = cluster.json("get", "service", "visits")["spec"]["clusterIP"]
    before = pod_counts(cluster, found)
    served = Counter()
    n = 60
    for _ in range(n):
        # A new connection each time: kube-proxy picks an endpoint per connection.
        status, headers, body = cluster.http(f"http://{service_ip}/")
        assert status == 200, body
        served[headers["x-served-by"]] += 1
    after = pod_counts(cluster, found)
    assert set(served) == set(PODS), served
    for name in PODS:
        assert after[name] - before[name] == served[name], (name, before, after, served)


def test_visits_all_through_coredns_shows_the_three(deployed):
    cluster, found = deployed
    ip = found["visits-1"]["status"]["podIP"]
    status, _, body = cluster.http(f"http://{ip}:8080/visits/all?format=json")
    assert status == 200, body
    view = json.loads(body)
    replicas = {r["pod"]: r for r in view["replicas"] if r["up"]}
    assert set(replicas) == set(PODS), view
    counts = pod_counts(cluster, found)
    for name in PODS:
        # The view may be up to PEER_CACHE_MILLISECONDS old; nothing visits in between here.
        assert replicas[name]["count"] == counts[name]


def test_deleted_pod_comes_back_on_its_claim(deployed):
    cluster, found = deployed
    ip = found["visits-1"]["status"]["podIP"]
    before = pod_counts(cluster, found)["visits-1"]
    claim = cluster.json("get", "pvc", "data-visits-1")["spec"]["volumeName"]
    uid = found["visits-1"]["metadata"]["uid"]
    cluster.kubectl("delete", "pod", "visits-1", "--wait=true", timeout=120)
    again = cluster.wait("visits-1 recreated and Ready",
                         lambda: (lambda p: p if p and p["visits-1"]["metadata"]["uid"] != uid else None)(
                             cluster.all_ready(PODS)), timeout=180)
    assert cluster.json("get", "pvc", "data-visits-1")["spec"]["volumeName"] == claim
    ip = again["visits-1"]["status"]["podIP"]
    status, headers, _ = cluster.http(f"http://{ip}:8080/visits")
    assert int(headers["x-visit-count"]) == before
    status, headers, body = cluster.http(f"http://{ip}:8080/")
    assert status == 200
    assert re.search(rf"\b{before + 1}\b", body), body[:500]
