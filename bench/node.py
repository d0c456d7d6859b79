"""The server component as a node runs it: the project's image (Dockerfile, built by buildah)
in a private containerd with runwasi's wasmtime shim, one container per replica on the host's
network with the data directory bind-mounted at /data. containerd, the pods' lifecycle and
the cleanup are the plain-containerd tests' (tests/k8s/node_runtime.py).

Two shims, each in its own containerd, same image: the release nodes install (runwasi's
containerd-shim-wasmtime v0.6.0, wasmtime 27.0.0 inside; ../shared/bin, on PATH) and runwasi's
unreleased main (wasmtime 36.0.6; ../shared/bin/runwasi-main). A replica runs either with the
open-file limit raised (`limits=None`) or as deployed (`limits`: the spec's linux.resources from
the manifest's CPU and memory limits, and ctr's default RLIMIT_NOFILE 1024:1024).
"""

import atexit
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from common import ROOT, free_port, wait_for_200

sys.path.insert(0, str(ROOT / "tests" / "k8s"))
import node_runtime  # noqa: E402

IMAGE = "localhost/spin-visits:bench"
MAIN_SHIM = ROOT.parent / "shared" / "bin" / "runwasi-main" / node_runtime.SHIM
# Why the node runtime was left out, for the report.
missing = None


class Image:
    """The image archive, built once for every containerd."""
    archive = None

    @classmethod
    def get(cls):
        if cls.archive is None:
            base = Path(tempfile.mkdtemp(prefix="spin-visits-bench-image-"))
            atexit.register(shutil.rmtree, base, ignore_errors=True)
            archive = base / "image.tar"
            buildah = ["buildah", "--storage-driver", "vfs", "--root", str(base / "buildah"),
                       "--runroot", str(base / "buildah-run")]
            subprocess.run(buildah + ["bud", "--quiet", "--platform", "wasi/wasm", "-t", IMAGE, str(ROOT)],
                           check=True, capture_output=True)
            subprocess.run(buildah + ["push", "--quiet", IMAGE, f"oci-archive:{archive}:{IMAGE}"],
                           check=True, capture_output=True)
            subprocess.run(buildah + ["rmi", "--all", "--force"], capture_output=True)
            cls.archive = archive
        return cls.archive


class NodeRuntime:
    name = "server component (runwasi 0.6.0 shim, wasmtime 27)"
    instances = {}

    @classmethod
    def find(cls, which="release"):
        """The node runtime with the release shim or runwasi main's, set up once, or None (and
        `missing` says why)."""
        global missing
        if which in cls.instances:
            return cls.instances[which]
        if which == "release":
            shim = os.environ.get(node_runtime.SHIM_ENV) or shutil.which(node_runtime.SHIM)
            name = cls.name
        else:
            shim = str(MAIN_SHIM) if MAIN_SHIM.exists() else None
            name = "server component (runwasi main shim, wasmtime 36)"
        reason = None
        if not shim:
            reason = f"`{node_runtime.SHIM}` ({which}) is not there (scripts/bench.sh puts ../shared/bin on PATH)"
        elif os.geteuid() != 0:
            reason = "containerd needs root"
        elif not all(shutil.which(tool) for tool in ("containerd", "ctr", "buildah")):
            reason = "containerd, ctr or buildah is not installed"
        if reason:
            missing = reason if which == "release" else missing
            print(f"  node runtime ({which}) left out: {reason}", flush=True)
            cls.instances[which] = None
            return None
        cls.instances[which] = cls(Path(shim).resolve(), name)
        return cls.instances[which]

    def __init__(self, shim, name):
        self.name = name
        self.base = Path(tempfile.mkdtemp(prefix="spin-visits-bench-node-"))
        archive = Image.get()
        self.containerd = node_runtime.Containerd(self.base / "containerd", shim)
        atexit.register(self.close)
        self.containerd.import_image(archive)
        self.entrypoint = node_runtime.image_config(archive)["Entrypoint"]
        self.base_spec = json.loads(subprocess.run(["ctr", "oci", "spec"], check=True,
                                                   capture_output=True, text=True).stdout)

    def start(self, data_dir, env, limits=None):
        self.addr = f"127.0.0.1:{free_port()}"
        # The pod's user owns its claim on a node (fsGroup); here the directory is root's.
        os.chmod(data_dir, 0o777)
        spec = json.loads(json.dumps(self.base_spec))
        spec["process"]["args"] = list(self.entrypoint)
        spec["process"]["env"] = [f"{key}={value}" for key, value in
                                  {"POD_NAME": "bench-0", "LISTEN_ADDR": self.addr,
                                   "ADMIN_ADDR": "127.0.0.1:0", **env}.items()]
        if limits is None:
            # ctr's default spec caps open files at 1 024; these rows raise it to the bench's own.
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": hard, "soft": hard}]
        else:
            # As deployed: the node's default 1024:1024 and the manifest's limits as the
            # container's cgroup (what the kubelet writes into the spec).
            soft, hard = limits.nofile
            spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": hard, "soft": soft}]
            resources = {}
            if limits.cpu:
                resources["cpu"] = {"quota": int(limits.cpu * 100_000), "period": 100_000}
            if limits.memory:
                resources["memory"] = {"limit": limits.memory}
            spec["linux"]["resources"] = {**spec["linux"].get("resources", {}), **resources}
        spec["root"] = {"path": "rootfs", "readonly": True}
        self.cgroup = f"{node_runtime.CGROUP_PARENT}/{uuid.uuid4().hex[:8]}"
        spec["linux"]["cgroupsPath"] = f"/{self.cgroup}"
        spec["linux"]["namespaces"] = [ns for ns in spec["linux"]["namespaces"] if ns["type"] != "network"]
        spec["mounts"].append({"destination": "/data", "type": "bind", "source": str(data_dir),
                               "options": ["rbind", "rw"]})
        self.pod = self.containerd.pod(spec, IMAGE, f"bench-{uuid.uuid4().hex[:8]}")
        wait_for_200(f"http://{self.addr}/healthz")

    def memory_dir(self):
        """The container's memory cgroup (v2: the one tree; v1: the memory controller's)."""
        for path in (Path("/sys/fs/cgroup") / self.cgroup, Path("/sys/fs/cgroup/memory") / self.cgroup):
            if (path / "memory.peak").exists() or (path / "memory.max_usage_in_bytes").exists():
                return path
        return None

    def stop(self):
        self.pod.remove()

    def close(self):
        self.containerd.stop()
        shutil.rmtree(self.base, ignore_errors=True)
