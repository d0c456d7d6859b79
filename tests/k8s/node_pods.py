"""The rendered StatefulSet's pods on the release shim, as the `node` and `pods` fixtures of the
tests that must stay on plain containerd (see node_runtime.py): a private containerd with
runwasi's wasmtime shim 0.6.0 (what the `wasmtime` RuntimeClass runs), each pod in its own
network namespace with its own IP, with ctr's default rlimits (RLIMIT_NOFILE 1024:1024).

Skips, saying why, where the shim or root is missing. NODE_IMAGE_CONTEXT names another build
context for the image (a checkout whose target/ holds the server component), to run these
against another build of the server."""

import contextlib
import http.client
import json
import os
import resource
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, one
from node_runtime import (Containerd, build_image, image_config, make_claim, pod_spec, shim_or_skip,
                          write_hosts)

IMAGE = "localhost/spin-visits:node-test"
CONTEXT_ENV = "NODE_IMAGE_CONTEXT"
WASM = "target/wasm32-wasip2/release/spin-visits-server.wasm"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    shim = shim_or_skip()
    context = Path(os.environ.get(CONTEXT_ENV) or ROOT)
    if not (context / WASM).exists():
        pytest.fail(f"{context / WASM} is missing: build the server component first "
                    "(scripts/tools.sh's build_components)")
    work = tmp_path_factory.mktemp("node")
    archive = build_image(work, IMAGE, context)
    containerd = Containerd(work / "containerd", shim)
    try:
        containerd.import_image(archive)
        base_spec = json_of(["ctr", "oci", "spec"])
        yield containerd, base_spec, image_config(archive)["Entrypoint"]
    finally:
        containerd.stop()


def json_of(command):
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def named_port(container, port):
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p["name"] == port)


@pytest.fixture
def pods(node, kustomized, tmp_path):
    """Starts pods of the rendered StatefulSet, each in a network namespace of its own;
    removes every container and namespace afterwards, whatever happened."""
    containerd, base_spec, entrypoint = node
    sts = one(kustomized, "StatefulSet")
    fs_group = sts["spec"]["template"]["spec"]["securityContext"]["fsGroup"]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    networks = []
    hosts = tmp_path / "hosts"
    live = {}
    write_hosts(hosts, sts["spec"]["serviceName"], live)

    class Pods:
        statefulset = sts
        spec = sts["spec"]["template"]["spec"]
        http_port = named_port(container, "http")

        def claim(self, name):
            return tmp_path / f"data-{name}"

        def start(self, name, env=None, claim=None):
            """`env`: values that replace (or add to) the manifest's, as a patched pod spec would;
            `claim`: a directory of the caller's instead of one as the kubelet leaves it."""
            claim = claim or self.claim(name)
            if not claim.exists():
                make_claim(claim, fs_group)
            network = PodNetwork(len(networks))
            networks.append(network)
            network.create()
            live[name] = network.ip
            write_hosts(hosts, sts["spec"]["serviceName"], live)
            spec = pod_spec(base_spec, entrypoint, sts, name, claim, hosts, netns=network)
            if env:
                spec["process"]["env"] = [e for e in spec["process"]["env"] if e.split("=", 1)[0] not in env]
                spec["process"]["env"] += [f"{key}={value}" for key, value in env.items()]
            pod = containerd.pod(spec, IMAGE, f"{name}-{len(networks)}",
                                 address=f"{network.ip}:{self.http_port}")
            pod.ip = network.ip
            pod.wait_listening()
            return pod

    try:
        yield Pods()
    finally:
        for pod in containerd.pods:
            pod.remove()
        for network in networks:
            network.release()


def lines(claim):
    path = claim / "visits.txt"
    return path.read_text().splitlines() if path.exists() else []


def http_get(host, port, path, timeout):
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


@contextlib.contextmanager
def raised_file_limit(needed):
    """This test process may hold `needed` descriptors (more sockets than a shell's 1024) while
    the block runs; the limits it had come back after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(hard, needed)))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def dechunk(data):
    """A chunked body's bytes (the server sends no chunk extensions or trailers); linear, as
    the bodies run to 24 MB."""
    out, at = bytearray(), 0
    while True:
        end = data.index(b"\r\n", at)
        size = int(data[at:end], 16)
        if size == 0:
            return bytes(out)
        out += data[end + 2:end + 2 + size]
        at = end + 2 + size + 2


class PodNetwork:
    """A pod's own network namespace with its own IP, as a CNI plugin leaves it (../shared/
    RECIPES.md, "A pod with its own IP"): a veth pair, the pod's end `eth0` with the pod IP,
    the node's end with the first address of a /24 of its own, so the node reaches the pod.
    One per pod incarnation: a replaced pod gets a new sandbox and a new IP, as on a node.
    `index` (0-255) picks the /24; names carry the test run's pid. An `unreachable` route for
    the /24, behind the veth's own, keeps traffic to the pod's IP on this machine once the
    pod is gone (a client still sending there gets EHOSTUNREACH, not the default route);
    `release` removes it."""

    def __init__(self, index):
        run = os.getpid() % 100000
        self.name = f"svtest{run}-{index}"
        self.path = Path("/var/run/netns") / self.name
        self.node_if = f"sv{run}v{index}"
        subnet = f"10.{200 + os.getpid() % 50}.{index}"
        self.gateway, self.ip = f"{subnet}.1", f"{subnet}.2"
        self.subnet = f"{subnet}.0/24"
        self.created = self.guarded = False

    def create(self):
        subprocess.run(["ip", "route", "replace", "unreachable", self.subnet, "metric", "4000"],
                       check=True, capture_output=True)
        self.guarded = self.created = True
        ip = lambda *args: subprocess.run(["ip", *args], check=True, capture_output=True)  # noqa: E731
        inside = lambda *args: ip("netns", "exec", self.name, "ip", *args)  # noqa: E731
        ip("netns", "add", self.name)
        ip("link", "add", self.node_if, "type", "veth", "peer", "name", "eth0", "netns", self.name)
        ip("addr", "add", f"{self.gateway}/24", "dev", self.node_if)
        ip("link", "set", self.node_if, "up")
        inside("addr", "add", f"{self.ip}/24", "dev", "eth0")
        inside("link", "set", "eth0", "up")
        inside("link", "set", "lo", "up")
        inside("route", "add", "default", "via", self.gateway)
        return self

    def remove(self):
        """Deleting the namespace deletes its veth pair; the node's end is removed as well
        in case the namespace never got its half."""
        if not self.created:
            return
        self.created = False
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        subprocess.run(["ip", "link", "del", self.node_if], capture_output=True)

    def release(self):
        """Removes the namespace and the route that kept its IP on this machine."""
        self.remove()
        if self.guarded:
            self.guarded = False
            subprocess.run(["ip", "route", "del", "unreachable", self.subnet, "metric", "4000"],
                           capture_output=True)
