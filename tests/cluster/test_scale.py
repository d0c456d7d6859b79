"""`kubectl scale statefulset/visits --replicas=5`, then back to 3, on the real node: the
StatefulSet controller makes the new claims from volumeClaimTemplates and the PV controller
binds them; scaled down, persistentVolumeClaimRetentionPolicy (whenScaled: Retain) keeps the
removed replicas' claims with their visits; /visits/all (the headless Service through CoreDNS)
follows the pods."""

import json
import time

from cluster_helpers import PODS, claim_lines

FIVE = PODS + ["visits-3", "visits-4"]


def view(cluster, pod):
    status, _, body = cluster.http(f"http://{pod['status']['podIP']}:8080/visits/all?format=json")
    assert status == 200, body
    # Every replica the view names, up or not: a removed pod must not be listed at all.
    return {r.get("pod", r["peer"]): r for r in json.loads(body)["replicas"]}


def test_scale_to_five_and_back_keeps_the_claims(cluster):
    cluster.deploy_server()
    try:
        cluster.kubectl("scale", "statefulset/visits", "--replicas=5")
        five = cluster.wait("five Ready pods", lambda: cluster.all_ready(FIVE), timeout=300)
        for name in FIVE:
            claim = cluster.json("get", "pvc", f"data-{name}")
            assert claim["status"]["phase"] == "Bound", claim["status"]
        # One visit on a new replica, to find again on its retained claim.
        status, headers, _ = cluster.http(f"http://{five['visits-4']['status']['podIP']}:8080/")
        assert status == 200 and headers["x-served-by"] == "visits-4"
        # The headless Service names every pod; the view may be PEER_CACHE_MILLISECONDS old.
        seen = cluster.wait("/visits/all showing five replicas",
                            lambda: (lambda v: v if set(v) == set(FIVE) and all(r["up"] for r in v.values()) else None)(
                                view(cluster, five["visits-0"])), timeout=60)
        assert seen["visits-4"]["count"] >= 1
        kept = claim_lines(cluster.claim_dir("data-visits-4"))
        assert len(kept) == seen["visits-4"]["count"]
    finally:
        cluster.kubectl("scale", "statefulset/visits", "--replicas=3")
    cluster.wait("visits-3 and visits-4 gone",
                 lambda: not set(cluster.pods()) & {"visits-3", "visits-4"}, timeout=180)
    three = cluster.wait("three Ready pods", lambda: cluster.all_ready(PODS), timeout=120)
    for name in ("visits-3", "visits-4"):
        claim = cluster.json("get", "pvc", f"data-{name}")
        assert claim["status"]["phase"] == "Bound", f"{name}'s claim was not retained"
    assert claim_lines(cluster.claim_dir("data-visits-4")) == kept
    # Until the headless Service's DNS answer expires (CoreDNS `ttl 30` and `cache 30`, as
    # kubeadm's Corefile has them), the view still lists the removed pods' addresses as down.
    start = time.monotonic()
    cluster.wait("/visits/all showing only the three replicas",
                 lambda: set(view(cluster, three["visits-0"])) == set(PODS), timeout=150)
    print(f"/visits/all followed the scale-down after {time.monotonic() - start:.0f} s")
