"""Issue 21 on the real node: `kubectl apply -k k8s/spin/`, the Spin component's SQLite build on
containerd-shim-spin (RuntimeClass wasmtime-spin-v2, installed as runtime-class-manager's Spin
Shim installs it), in a namespace of its own. Three Ready pods, each replica's visits in Spin's
SQLite database on its own claim, a deleted pod back on its claim with its count, and
/visits/all across the three (the component calls its peers through the headless Service)."""

import json
import shutil
import sqlite3
from collections import Counter

import pytest

from cluster_helpers import LABELS, PODS, ROOT

NAMESPACE = "spin-test"


@pytest.fixture(scope="module")
def spin(cluster):
    cluster.kubectl("create", "namespace", NAMESPACE)
    try:
        cluster.kubectl("apply", "-n", NAMESPACE, "-k", str(ROOT / "k8s" / "spin"))
        cluster.wait("three Ready Spin pods",
                     lambda: cluster.all_ready(PODS, LABELS, NAMESPACE), timeout=300)
        yield cluster
    finally:
        cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s",
                        timeout=150, check=False)


def count(cluster, name):
    ip = cluster.pods(LABELS, NAMESPACE)[name]["status"]["podIP"]
    status, headers, body = cluster.http(f"http://{ip}:8080/visits")
    assert status == 200, body
    return int(headers["x-visit-count"])


def rows(cluster, name, tmp_path):
    """The visits in the replica's database on its claim, read from a copy (SQLite's -wal and
    -shm files must not be made by another user under the running pod)."""
    directory = cluster.claim_dir(f"data-{name}", NAMESPACE)
    copy = tmp_path / name
    copy.mkdir()
    for suffix in ("", "-wal"):
        if (directory / f"visits.db{suffix}").exists():
            shutil.copy(directory / f"visits.db{suffix}", copy / f"visits.db{suffix}")
    with sqlite3.connect(copy / "visits.db") as db:
        return db.execute("SELECT count(*) FROM visits").fetchone()[0]


def test_three_pods_on_the_spin_shim_with_their_own_claims(spin):
    found = spin.pods(LABELS, NAMESPACE)
    volumes = set()
    for name in PODS:
        assert found[name]["spec"]["runtimeClassName"] == "wasmtime-spin-v2"
        claim = spin.json("get", "pvc", "-n", NAMESPACE, f"data-{name}")
        assert claim["status"]["phase"] == "Bound"
        volumes.add(claim["spec"]["volumeName"])
        status, _, body = spin.http(f"http://{found[name]['status']['podIP']}:8080/readyz")
        assert status == 200 and "SQLite" in body, body
    assert len(volumes) == 3


def test_visits_through_the_service_land_in_each_replicas_database(spin, tmp_path):
    service_ip = spin.json("get", "service", "-n", NAMESPACE, "visits")["spec"]["clusterIP"]
    before = {name: count(spin, name) for name in PODS}
    served = Counter()
    for _ in range(45):
        status, headers, body = spin.http(f"http://{service_ip}/")
        assert status == 200, body
        served[headers["x-served-by"]] += 1
    assert set(served) == set(PODS), served
    for name in PODS:
        after = count(spin, name)
        assert after - before[name] == served[name], (name, before, after, served)
        directory = spin.claim_dir(f"data-{name}", NAMESPACE)
        owner = (directory / "visits.db").stat()
        assert (owner.st_uid, owner.st_gid) == (65532, 65532), "written as the pod's user"
        assert not (directory / "visits.txt").exists()
        assert rows(spin, name, tmp_path) == after


def test_visits_all_across_the_three(spin):
    ip = spin.pods(LABELS, NAMESPACE)["visits-2"]["status"]["podIP"]
    status, _, body = spin.http(f"http://{ip}:8080/visits/all?format=json")
    assert status == 200, body
    view = {r["pod"]: r for r in json.loads(body)["replicas"] if r["up"]}
    assert set(view) == set(PODS), body
    for name in PODS:
        assert view[name]["count"] == count(spin, name)


def test_a_deleted_pod_keeps_its_count(spin):
    before = count(spin, "visits-1")
    assert before > 0
    uid = spin.pods(LABELS, NAMESPACE)["visits-1"]["metadata"]["uid"]
    spin.kubectl("delete", "pod", "-n", NAMESPACE, "visits-1", "--wait=true", timeout=120)
    found = spin.wait("visits-1 recreated and Ready",
                      lambda: (lambda p: p if p and p["visits-1"]["metadata"]["uid"] != uid else None)(
                          spin.all_ready(PODS, LABELS, NAMESPACE)), timeout=180)
    assert count(spin, "visits-1") == before
    status, headers, _ = spin.http(f"http://{found['visits-1']['status']['podIP']}:8080/")
    assert status == 200 and headers["x-served-by"] == "visits-1"
    assert count(spin, "visits-1") == before + 1
