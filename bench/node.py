"""The server component as a node runs it: the project's image (Dockerfile, built by buildah)
in a private containerd with runwasi's wasmtime shim, one container per replica on the host's
network with the data directory bind-mounted at /data. containerd, the pods' lifecycle and
the cleanup are the node-runtime test's (tests/k8s/node_runtime.py).
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
# Why the node runtime was left out, for the report.
missing = None


class NodeRuntime:
    name = "server component (runwasi shim)"

    @classmethod
    def find(cls):
        """The node runtime, set up once, or None (and `missing` says why)."""
        global missing
        if getattr(cls, "instance", None) or missing:
            return getattr(cls, "instance", None)
        shim = os.environ.get(node_runtime.SHIM_ENV) or shutil.which(node_runtime.SHIM)
        if not shim:
            missing = f"`{node_runtime.SHIM}` is not on PATH (CI and scripts/bench.sh put ../shared/bin there)"
        elif os.geteuid() != 0:
            missing = "containerd needs root"
        elif not all(shutil.which(tool) for tool in ("containerd", "ctr", "buildah")):
            missing = "containerd, ctr or buildah is not installed"
        if missing:
            print(f"  node runtime left out: {missing}", flush=True)
            return None
        cls.instance = cls(Path(shim).resolve())
        return cls.instance

    def __init__(self, shim):
        self.base = Path(tempfile.mkdtemp(prefix="spin-visits-bench-node-"))
        archive = self.base / "image.tar"
        buildah = ["buildah", "--storage-driver", "vfs", "--root", str(self.base / "buildah"),
                   "--runroot", str(self.base / "buildah-run")]
        subprocess.run(buildah + ["bud", "--quiet", "--platform", "wasi/wasm", "-t", IMAGE, str(ROOT)],
                       check=True, capture_output=True)
        subprocess.run(buildah + ["push", "--quiet", IMAGE, f"oci-archive:{archive}:{IMAGE}"],
                       check=True, capture_output=True)
        subprocess.run(buildah + ["rmi", "--all", "--force"], capture_output=True)
        self.containerd = node_runtime.Containerd(self.base / "containerd", shim)
        atexit.register(self.close)
        self.containerd.import_image(archive)
        self.entrypoint = node_runtime.image_config(archive)["Entrypoint"]
        self.base_spec = json.loads(subprocess.run(["ctr", "oci", "spec"], check=True,
                                                   capture_output=True, text=True).stdout)

    def start(self, data_dir, env):
        self.addr = f"127.0.0.1:{free_port()}"
        # The pod's user owns its claim on a node (fsGroup); here the directory is root's.
        os.chmod(data_dir, 0o777)
        spec = json.loads(json.dumps(self.base_spec))
        spec["process"]["args"] = list(self.entrypoint)
        spec["process"]["env"] = [f"{key}={value}" for key, value in
                                  {"POD_NAME": "bench-0", "LISTEN_ADDR": self.addr, **env}.items()]
        # ctr's default spec caps open files at 1 024, below MAX_CONNECTIONS plus the listener;
        # a node's runtime gives containers its own, higher limit: here, the bench's own.
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": hard, "soft": hard}]
        spec["root"] = {"path": "rootfs", "readonly": True}
        spec["linux"]["cgroupsPath"] = f"/{node_runtime.CGROUP_PARENT}/{uuid.uuid4().hex[:8]}"
        spec["linux"]["namespaces"] = [ns for ns in spec["linux"]["namespaces"] if ns["type"] != "network"]
        spec["mounts"].append({"destination": "/data", "type": "bind", "source": str(data_dir),
                               "options": ["rbind", "rw"]})
        self.pod = self.containerd.pod(spec, IMAGE, f"bench-{uuid.uuid4().hex[:8]}")
        wait_for_200(f"http://{self.addr}/healthz")

    def stop(self):
        self.pod.remove()

    def close(self):
        self.containerd.stop()
        shutil.rmtree(self.base, ignore_errors=True)
