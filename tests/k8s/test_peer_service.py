"""How a replica finds its peers, on `wasmtime run` (the tests' usual runner): replicas on
distinct loopback addresses behind one name, served by a hosts file in a private mount
namespace for each replica (root, as CI has), so the host's own /etc/hosts is untouched. PEERS
wins over PEER_SERVICE, and a name that does not resolve is shown down with the reason. (The
headless Service itself, resolved by CoreDNS and followed through a scale, is
tests/cluster/test_statefulset.py's and test_scale.py's.)"""

import json
import os

import pytest

from conftest import Replica
from node_runtime import common_port, write_hosts

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="private mount namespaces need root")


def view(replica):
    status, _, body = replica.get("/visits/all?format=json")
    assert status == 200, body
    return json.loads(body)


class HostsReplica(Replica):
    """A server component that sees `hosts` as its /etc/hosts."""

    def __init__(self, hosts, *args, **kwargs):
        self.hosts = hosts
        super().__init__(*args, **kwargs)

    def _start(self, args):
        super()._start(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        'mount --bind "$0" /etc/hosts && exec "$@"', str(self.hosts), *args])


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
