"""A StatefulSet rehearsal on the real runtime: three server components configured from the
rendered StatefulSet (its env, mount path, port and probes), each with its own directory as
its claim, started together as Parallel pod management does."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import Replica, one
from node_runtime import downward_env

VISITS = {0: 4, 1: 7, 2: 2}


@pytest.fixture
def pod_template(kustomized):
    sts = one(kustomized, "StatefulSet")
    (c,) = sts["spec"]["template"]["spec"]["containers"]
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mount = next(m for m in c["volumeMounts"] if m["name"] == claim["metadata"]["name"])
    return sts, c, mount["mountPath"]


def pod_env(container, pod_name):
    """The env a pod gets: literal values, and the downward API's metadata.name."""
    env = downward_env(container, pod_name)
    # Each pod has its own network namespace; on one machine the three share loopback, so
    # they keep the manifest's port in the check below and take free ports here.
    env["LISTEN_ADDR"] = "127.0.0.1:0"
    env["ADMIN_ADDR"] = "127.0.0.1:0"
    return env


def test_three_replicas_each_keep_their_own_log(pod_template, tmp_path, replicas):
    sts, container, mount_path = pod_template
    names = [f"{sts['metadata']['name']}-{i}" for i in range(sts["spec"]["replicas"])]
    claims = {name: tmp_path / f"data-{name}" for name in names}
    for claim in claims.values():
        claim.mkdir()

    with ThreadPoolExecutor(len(names)) as pool:
        started = dict(zip(names, pool.map(
            lambda name: replicas(claims[name], mount_path, pod_env(container, name)), names)))

    for name, replica in started.items():
        for probe in ("livenessProbe", "readinessProbe"):
            status, _, _ = replica.get(container[probe]["httpGet"]["path"])
            assert status == 200, f"{name} {probe}"

    for index, name in enumerate(names):
        for _ in range(VISITS[index]):
            status, headers, _ = started[name].get("/")
            assert status == 200 and headers["x-served-by"] == name

    for index, name in enumerate(names):
        lines = (claims[name] / "visits.txt").read_text().splitlines()
        assert len(lines) == VISITS[index], f"{name} holds only its own visits"
        status, headers, body = started[name].get("/visits")
        assert status == 200 and headers["x-served-by"] == name
        assert body.splitlines() == lines

    # The pod is lost and rescheduled onto the same claim: nothing is lost, new visits append.
    restarted = names[1]
    before = (claims[restarted] / "visits.txt").read_text()
    started[restarted].stop()
    again = replicas(claims[restarted], mount_path, pod_env(container, restarted))
    status, _, body = again.get("/visits")
    assert status == 200 and body == before
    for _ in range(3):
        assert again.get("/")[0] == 200
    after = (claims[restarted] / "visits.txt").read_text()
    assert after.startswith(before) and len(after.splitlines()) == VISITS[1] + 3
    for other in (names[0], names[2]):
        assert len((claims[other] / "visits.txt").read_text().splitlines()) == VISITS[names.index(other)]
