"""Peers found through the headless Service, on `wasmtime run` (the tests' usual runner):
replicas on distinct loopback addresses behind one name, served by a hosts file in a private
mount namespace for each replica (root, as CI has), so the host's own /etc/hosts is untouched.
This also shows that wasmtime's ip-name-lookup goes through the host resolver, which honours
/etc/hosts. test_node_runtime.py does the same under runwasi's shim."""

import os

import pytest

from conftest import Replica, one
from node_runtime import common_port, pod_env, write_hosts
from scaling import check_scaling, view

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="private mount namespaces need root")


class HostsReplica(Replica):
    """A server component that sees `hosts` as its /etc/hosts."""

    def __init__(self, hosts, *args, **kwargs):
        self.hosts = hosts
        super().__init__(*args, **kwargs)

    def _start(self, args):
        super()._start(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        'mount --bind "$0" /etc/hosts && exec "$@"', str(self.hosts), *args])


def test_scaling_is_seen_without_a_manifest_edit(kustomized, replicas, tmp_path):
    sts = one(kustomized, "StatefulSet")
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    (mount,) = container["volumeMounts"]
    addresses = {f"{sts['metadata']['name']}-{i}": f"127.0.0.{i + 2}" for i in range(5)}
    port = common_port(container["ports"][0]["containerPort"], list(addresses.values()))
    hosts = tmp_path / "hosts"

    def start(name):
        claim = tmp_path / f"data-{name}"
        claim.mkdir(exist_ok=True)
        env = pod_env(sts, name, f"{addresses[name]}:{port}")
        return replicas(hosts, claim, mount["mountPath"], env, kind=HostsReplica)

    assert check_scaling(
        start=start,
        stop=lambda replica: replica.stop(),
        publish=lambda names: write_hosts(hosts, sts["spec"]["serviceName"],
                                          {name: addresses[name] for name in names}),
        claim_lines=lambda name: (tmp_path / f"data-{name}" / "visits.txt").read_text().splitlines(),
        sts_name=sts["metadata"]["name"],
    ) == [3, 5, 2, 3]


def test_peers_overrides_the_service_and_an_unknown_name_is_shown_down(replicas, tmp_path):
    hosts = tmp_path / "hosts"
    write_hosts(hosts, "visits-headless", {"visits-0": "127.0.0.2", "visits-1": "127.0.0.3"})
    port = common_port(8080, ["127.0.0.2", "127.0.0.3"])

    def start(name, address, **env):
        claim = tmp_path / name
        claim.mkdir()
        env = {"POD_NAME": name, "LISTEN_ADDR": f"{address}:{port}", **env}
        return replicas(hosts, claim, "/data", env, kind=HostsReplica)

    service = f"visits-headless:{port}"
    start("visits-1", "127.0.0.3", PEER_SERVICE=service)
    pinned = start("visits-0", "127.0.0.2", PEER_SERVICE=service, PEERS=f"127.0.0.2:{port}")
    assert [r["pod"] for r in view(pinned)["replicas"]] == ["visits-0"], "PEERS wins"

    lost = start("visits-9", "127.0.0.4", PEER_SERVICE=f"no-such-service.invalid:{port}")
    (report,) = view(lost)["replicas"]
    assert not report["up"] and "cannot resolve no-such-service.invalid" in report["reason"], report
