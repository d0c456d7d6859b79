"""Shared fixtures: the manifests as rendered objects, and helpers to run components."""

import itertools
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import helm_python as helm
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "spin-visits"
SERVER_WASM = ROOT / "target/wasm32-wasip2/release/spin-visits-server.wasm"
SPIN_WASM = ROOT / "target/wasm32-wasip2/release/spin_visits_http.wasm"


def tool(name, env_var=None):
    path = os.environ.get(env_var) if env_var else None
    path = path or shutil.which(name)
    if not path:
        pytest.fail(f"{name} not found: run scripts/test.sh, which installs it")
    return path


def kustomize(directory):
    text = subprocess.run(
        [tool("kubectl"), "kustomize", str(directory)],
        check=True, capture_output=True, text=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render_chart(values=None, name="visits"):
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values or {}, name=name, namespace="default")
    objects = []
    for path, text in sorted(rendered.items()):
        if path.endswith(".yaml"):
            objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def load_yaml_dir(directory, exclude=()):
    objects = []
    for path in sorted(Path(directory).rglob("*.yaml")):
        if any(part in exclude for part in path.relative_to(directory).parts):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return objects


def one(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="session")
def kustomized():
    return kustomize(ROOT / "k8s")


@pytest.fixture(scope="session")
def chart_default():
    return render_chart()


@pytest.fixture(params=["kustomize", "chart"])
def rendered(request, kustomized, chart_default):
    """Each test that takes it runs on both renders."""
    return kustomized if request.param == "kustomize" else chart_default


@pytest.fixture(scope="session")
def runtime_class_objects():
    return load_yaml_dir(ROOT / "runtime-class", exclude=("schema",))


class Replica:
    """A server component on the real runtime, configured like a pod."""

    def __init__(self, claim, mount_path, env, wasm=SERVER_WASM):
        self.output = []
        args = [tool("wasmtime", "WASMTIME"), "run", "-S", "inherit-network=y", "-S", "tcp=y",
                "-S", "cli=y", "-S", "allow-ip-name-lookup=y", "--dir", f"{claim}::{mount_path}"]
        # Replicas share this machine's ports: the admin listener takes a free one unless a
        # test names it.
        env = {"ADMIN_ADDR": "127.0.0.1:0", **env}
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        self._start(args + [str(wasm)])

    def _start(self, args):
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.address = None
        bound = threading.Event()

        def drain():
            for line in self.process.stdout:
                self.output.append(line)
                match = re.search(r"http://(127\.\d+\.\d+\.\d+:\d+)", line)
                if match and not bound.is_set():
                    self.address = match.group(1)
                    bound.set()

        threading.Thread(target=drain, daemon=True).start()
        if not bound.wait(30):
            self.stop()
            raise AssertionError("replica did not start: " + "".join(self.output))

    def get(self, path, headers=None):
        request = urllib.request.Request(f"http://{self.address}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()

    def stop(self):
        self.process.kill()
        self.process.wait()


@pytest.fixture
def replicas():
    started = []

    def start(*args, kind=Replica, **kwargs):
        replica = kind(*args, **kwargs)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        replica.stop()


def wait_until(predicate, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


class SpinReplica(Replica):
    """The Spin component on `wasmtime serve`, configured like a pod."""

    def __init__(self, claim, mount_path, env):
        env = dict(env)
        addr = env.pop("LISTEN_ADDR", "127.0.0.1:0")
        self.output = []
        args = [tool("wasmtime", "WASMTIME"), "serve", "-S", "cli=y", "--addr", addr,
                "--dir", f"{claim}::{mount_path}"]
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        self._start(args + [str(SPIN_WASM)])


def start_spin(replicas, claim, env, mount_path="/data"):
    return replicas(claim, mount_path, env, kind=SpinReplica)


_next_port = itertools.count()


def free_port():
    """A loopback port below the kernel's ephemeral range, free now: one found by binding
    port 0 is the kernel's next pick for any socket bound to port 0 or any outgoing connection,
    so it can be gone before the server binds it (CI saw that in the Rust harness, whose
    free_port this mirrors)."""
    low = 10_000
    try:
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32_768
    span = max(ephemeral - low, 1)
    start = os.getpid() * 7919 % span
    for _ in range(span):
        port = low + (start + next(_next_port)) % span
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free loopback port between {low} and {ephemeral}")
