"""A node without a kubelet, for what must stay on plain containerd: a private containerd
(Debian's 1.6) running runwasi's wasmtime shim or containerd-shim-spin, and pods of the
rendered StatefulSet turned into OCI specs by this module (env with the downward API's
POD_NAME, the claim bind-mounted at its mountPath, /etc/hosts, the security contexts).
Everything it starts is recorded so `Containerd.stop` can undo it and check that nothing is
left.

The kubelet's own work (the StatefulSet, claims, probes, preStop, endpoints, DNS, scaling,
drain, rollouts) is tested on the real node of scripts/cluster.sh (tests/cluster/), not
imitated here; one exception, the Spin deployment's preStop sleep acted out by
test_spin_shim.py, stays until the real node's tests roll the Spin StatefulSet. What stays
here and why: checks of a shim given an exact spec, which the real
node cannot make quickly or at all: ctr's default RLIMIT_NOFILE 1024:1024 (a hard limit of
1024, test_node_open_files.py), the release shim's capabilities against an unwritable claim
(test_claim_access.py), the server's bounds under the release shim's wasmtime 27
(test_node_bounds.py), the Spin shim's SQLite store under `kill -9`, SIGTERM, a swapped
spin.toml and a read-only claim (test_spin_shim.py); and the benchmarks (bench/node.py,
bench/spin_shim.py), which compare the release shim with runwasi main's and the Spin shim
under set cgroup limits."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

RUNTIME = "io.containerd.wasmtime.v1"
SHIM = "containerd-shim-wasmtime-v1"
# Where a user points the tests at a shim that is not on PATH.
SHIM_ENV = "WASMTIME_SHIM"
# One per test run: the shim keeps per-namespace state under /run/containerd/wasmtime/, shared
# by every containerd on the machine.
NAMESPACE = f"spin-visits-test-{os.getpid()}"
SHIM_STATE = Path("/run/containerd/wasmtime") / NAMESPACE
# containerd-shim-spin (RuntimeClass wasmtime-spin-v2), for the Spin component's image.
SPIN_RUNTIME = "io.containerd.spin.v2"
SPIN_SHIM = "containerd-shim-spin-v2"
SPIN_SHIM_ENV = "SPIN_SHIM"
SPIN_SHIM_STATE = Path("/run/containerd/spin") / NAMESPACE
# Debian's containerd 1.6 ctr has no `run --user`, so pods run from a full spec
# (`ctr run --config`) built on ctr's own default spec.
FS_GROUP_MODE = 0o2775
CGROUP_PARENT = f"spin-visits-test-{os.getpid()}"


def shim_or_skip(shim=SHIM, shim_env=SHIM_ENV):
    path = os.environ.get(shim_env) or shutil.which(shim)
    if not path or not os.access(path, os.X_OK):
        pytest.skip(f"no node runtime: {shim} is not on PATH and {shim_env} is unset "
                    "(CI puts ../shared/bin on PATH; see runtime-class/ to install the shim)")
    if os.geteuid() != 0:
        pytest.skip("the plain-containerd tests run containerd and mounts, so they need root (as CI has)")
    for tool in ("containerd", "ctr", "buildah"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} not found: run scripts/test.sh, which installs it")
    return Path(path).resolve()


def image_config(archive):
    """The image config (entrypoint, env) from an OCI archive, as a runtime reads it."""
    with tarfile.open(archive) as tar:
        read = lambda name: json.load(tar.extractfile(name))  # noqa: E731
        blob = lambda digest: read("blobs/" + digest.replace(":", "/"))  # noqa: E731
        (entry,) = read("index.json")["manifests"]
        return blob(blob(entry["digest"])["config"]["digest"])["config"]


class Containerd:
    """containerd with its own root, state, sockets and config under `base`, running pods on
    runwasi's wasmtime shim, or on the Spin shim with `runtime=SPIN_RUNTIME`."""

    def __init__(self, base, shim, runtime=RUNTIME):
        self.base = base
        self.runtime = runtime
        self.shim_name, self.shim_state = {RUNTIME: (SHIM, SHIM_STATE),
                                           SPIN_RUNTIME: (SPIN_SHIM, SPIN_SHIM_STATE)}[runtime]
        self.socket = base / "containerd.sock"
        self.pods = []
        bin_dir = base / "bin"
        bin_dir.mkdir(parents=True)
        # containerd finds a runtime's shim by name on its PATH.
        (bin_dir / self.shim_name).symlink_to(shim)
        config = base / "config.toml"
        config.write_text(f"""version = 2
root = "{base}/root"
state = "{base}/state"
# No CRI: nothing here should touch the node's CNI, images or ports.
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{base}/opt"
""")
        env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
        self.log = open(base / "containerd.log", "w")
        self.process = subprocess.Popen(["containerd", "--config", str(config)], env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + 20
        while self.ctr("version", check=False).returncode != 0:
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise AssertionError("containerd did not start: " + self.logs())
            time.sleep(0.1)

    def logs(self):
        return (self.base / "containerd.log").read_text()

    def ctr(self, *args, check=True):
        result = subprocess.run(["ctr", "-a", str(self.socket), "-n", NAMESPACE, *args],
                                capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)}: {result.stdout}{result.stderr}")
        return result

    def import_image(self, archive):
        self.ctr("images", "import", "--all-platforms", str(archive))

    def pod(self, spec, image, container_id, address=None):
        """`address`: where the pod is reached, when its LISTEN_ADDR (0.0.0.0:8080 in its own
        network namespace) does not say."""
        pod = Pod(self, container_id)
        # Recorded before it starts, so a failed start is cleaned up too.
        self.pods.append(pod)
        pod.start(spec, image, address)
        return pod

    def stop(self):
        """Removes every container, task, rootfs mount and snapshot, stops containerd, and
        fails if anything it started is still there."""
        for pod in self.pods:
            pod.remove()
        if self.process.poll() is None:
            for image in self.ctr("images", "ls", "-q", check=False).stdout.split():
                self.ctr("images", "rm", "--sync", image, check=False)
            leftovers = self.ctr("snapshots", "ls", check=False).stdout.splitlines()[1:]
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        else:
            leftovers = []
        self.log.close()
        mounts = mounts_under(self.base)
        shims = shims_of(self.socket, self.shim_name)
        for pid in shims:
            os.kill(pid, signal.SIGKILL)
        for mount in reversed(mounts):
            subprocess.run(["umount", "-l", mount], check=False)
        # cgroup v1 keeps one tree per controller, v2 one tree.
        parents = [*Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PARENT}"),
                   *Path("/sys/fs/cgroup").glob(CGROUP_PARENT)]
        cgroups = sorted(child for parent in parents for child in parent.iterdir() if child.is_dir())
        for directory in [*cgroups, *parents]:
            try:
                directory.rmdir()
            except OSError:
                pass  # still in use: reported below
        state = self.shim_state
        shim_state = sorted(state.iterdir()) if state.exists() else []
        if state.exists() and not shim_state:
            state.rmdir()
        assert not (mounts or shims or leftovers or cgroups or shim_state), \
            f"left behind: mounts {mounts}, shim processes {shims}, snapshots {leftovers}, " \
            f"cgroups {cgroups}, shim state {shim_state}"


def mounts_under(base):
    with open("/proc/self/mountinfo") as info:
        return [line.split()[4] for line in info if line.split()[4].startswith(str(base))]


def shims_of(socket_path, shim=SHIM):
    """Shim processes serving this containerd (their command line names its socket)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and cmdline[0].endswith(shim.encode()) and str(socket_path).encode() in cmdline:
                pids.append(int(proc.name))
    return pids


class Pod:
    """One pod's container on the node runtime."""

    def __init__(self, containerd, container_id):
        self.containerd, self.id = containerd, container_id
        self.rootfs = containerd.base / "rootfs" / container_id
        self.removed = False

    def start(self, spec, image, address=None):
        containerd, container_id = self.containerd, self.id
        self.rootfs.mkdir(parents=True)
        # The image's snapshot, writable only so the runtime can create mount points in it;
        # the spec marks the root read-only as readOnlyRootFilesystem asks.
        containerd.ctr("images", "mount", "--platform", "wasi/wasm", "--rw", image, str(self.rootfs))
        spec["root"] = {"path": str(self.rootfs), "readonly": spec["root"]["readonly"]}
        path = containerd.base / f"{container_id}.json"
        path.write_text(json.dumps(spec, indent=1))
        containerd.ctr("run", "-d", "--runtime", containerd.runtime, "--config", str(path), container_id)
        env = dict(e.split("=", 1) for e in spec["process"]["env"])
        self.address = address or env.get("LISTEN_ADDR") or env["SPIN_HTTP_LISTEN_ADDR"]

    def get(self, path, timeout=10):
        request = urllib.request.Request(f"http://{self.address}{path}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()

    def wait_listening(self, seconds=30):
        host, port = self.address.rsplit(":", 1)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"{self.id} is not listening on {self.address}: "
                             + self.containerd.ctr("task", "ls", check=False).stdout)

    def task_pid(self):
        for line in self.containerd.ctr("task", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if fields[0] == self.id:
                return int(fields[1])
        raise AssertionError(f"no task {self.id}")

    def open_file_limits(self):
        """The task's RLIMIT_NOFILE as /proc shows it: [soft, hard]."""
        return next(line for line in Path(f"/proc/{self.task_pid()}/limits").read_text().splitlines()
                    if line.startswith("Max open files")).split()[3:5]

    def remove(self):
        if self.removed:
            return
        self.removed = True
        ctr = self.containerd.ctr
        ctr("task", "kill", "-s", "SIGKILL", self.id, check=False)
        deadline = time.monotonic() + 10
        while ctr("task", "delete", self.id, check=False).returncode != 0:
            if time.monotonic() > deadline or ctr("task", "ls", "-q", check=False).stdout.split().count(self.id) == 0:
                break
            time.sleep(0.1)
        ctr("container", "delete", self.id, check=False)
        ctr("images", "unmount", "--rm", str(self.rootfs), check=False)
        if self.rootfs.exists() and not mounts_under(self.rootfs):
            self.rootfs.rmdir()


def downward_env(container, pod_name):
    """A container's env as a pod gets it: literal values, and the downward API's
    metadata.name."""
    env = {}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        elif var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name":
            env[var["name"]] = pod_name
    return env


def pod_spec(base_spec, entrypoint, sts, pod_name, claim, hosts, claim_read_only=False,
             netns=None, env=None):
    """The OCI spec the kubelet would ask for, from the rendered StatefulSet. With `netns` (a
    `node_pods.PodNetwork`) the pod has its own network namespace and IP; without, it shares
    the node's. The container's env is the manifest's as it stands, or `env` when given (the
    caller's, for a pod on the node's network: the Spin shim's)."""
    spec = json.loads(json.dumps(base_spec))
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           **(env if env is not None else downward_env(container, pod_name))}
    process = spec["process"]
    process["env"] = [f"{k}={v}" for k, v in env.items()]
    process["args"] = list(entrypoint) + list(container.get("args", []))
    security = pod["securityContext"]
    process["user"] = {"uid": security["runAsUser"], "gid": security["runAsGroup"],
                       "additionalGids": [security["fsGroup"]]}
    container_security = container["securityContext"]
    if container_security["capabilities"]["drop"] == ["ALL"]:
        process["capabilities"] = {key: [] for key in process["capabilities"]}
    process["noNewPrivileges"] = not container_security["allowPrivilegeEscalation"]
    spec["root"] = {"path": "rootfs", "readonly": container_security.get("readOnlyRootFilesystem", False)}
    spec["hostname"] = pod_name
    # ctr's default spec puts every container in one cgroup ("/default"), and killing one
    # task then kills them all: each pod gets its own, under one parent per test run.
    spec["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/{pod_name}-{uuid.uuid4().hex[:8]}"
    # --net-host: the node's network namespace; or the pod's own, as a CNI plugin makes one.
    spec["linux"]["namespaces"] = [ns for ns in spec["linux"]["namespaces"] if ns["type"] != "network"]
    if netns:
        spec["linux"]["namespaces"].append({"type": "network", "path": str(netns.path)})
    (claim_template,) = sts["spec"]["volumeClaimTemplates"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == claim_template["metadata"]["name"])
    spec["mounts"] += [
        {"destination": mount["mountPath"], "type": "bind", "source": str(claim),
         "options": ["rbind", "ro" if claim_read_only else "rw"]},
        # The kubelet mounts a hosts file into every container; here it also stands in for
        # the cluster DNS that names the headless Service's pods.
        {"destination": "/etc/hosts", "type": "bind", "source": str(hosts), "options": ["rbind", "ro"]},
        # Cluster DNS answers with every pod's address; a hosts file gives them all only with
        # glibc's "multi on", which the scratch image has no host.conf to say.
        {"destination": "/etc/host.conf", "type": "bind", "source": str(host_conf(hosts)),
         "options": ["rbind", "ro"]},
    ]
    return spec


def make_claim(path, fs_group):
    """A claim as the kubelet leaves it with fsGroup: group-owned, group-writable, setgid."""
    path.mkdir(parents=True)
    os.chown(path, 0, fs_group)
    os.chmod(path, FS_GROUP_MODE)
    return path


def host_conf(hosts):
    path = hosts.with_name("host.conf")
    path.write_text("multi on\n")
    return path


def write_hosts(path, service, pods):
    """What the cluster DNS would answer: each pod by its stable name, and the headless
    Service's name for every pod it selects. Rewritten in place, so a bind mount of it sees
    the change."""
    lines = ["127.0.0.1 localhost"]
    lines += [f"{ip} {name}.{service} {service}" for name, ip in pods.items()]
    with open(path, "w") as hosts:
        hosts.write("\n".join(lines) + "\n")


def common_port(preferred, addresses):
    """The manifest's port when every pod address can take it, else one free port for all:
    peers behind one Service share one port."""
    for port in (preferred, 0):
        probes = []
        try:
            for address in addresses:
                probe = socket.socket()
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((address, port))
                port = probe.getsockname()[1]
                probes.append(probe)
            return port
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise AssertionError(f"no common free port on {addresses}")


def build_image(work, image, context=None, dockerfile="Dockerfile"):
    """The Dockerfile's image (or `dockerfile`'s, relative to the checkout), built by buildah
    (vfs, its own storage under `work`) from `context` (the checkout by default), as an OCI
    archive."""
    storage = work / "buildah"
    buildah = ["buildah", "--storage-driver", "vfs", "--root", str(storage),
               "--runroot", str(storage / "run")]
    archive = work / f"{image.rsplit('/', 1)[-1].replace(':', '-')}.tar"
    checkout = Path(__file__).resolve().parents[2]
    try:
        subprocess.run(buildah + ["bud", "--quiet", "--platform", "wasi/wasm", "-f",
                                  str(checkout / dockerfile), "-t", image, str(context or checkout)],
                       check=True, capture_output=True)
        subprocess.run(buildah + ["push", "--quiet", image, f"oci-archive:{archive}:{image}"],
                       check=True, capture_output=True)
    finally:
        subprocess.run(buildah + ["rmi", "--all", "--force"], capture_output=True)
    return archive
