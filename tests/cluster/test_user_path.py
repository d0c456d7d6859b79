"""The user's path, word for word (issue 18, section 3): the shell blocks of runtime-class/
README.md's "By hand" and docs/kubernetes.md's "Deploy, step by step", read from the docs (as
tests/e2e/test_spin_up.py reads `spin up`) and run as they are, one `bash -e` each, from a
shell in the node's network namespace, where `localhost:5000` is the registry `up` started
(cluster/configs.sh). A doc edit that breaks a step fails here.

What the test supplies around the blocks, as a user's machine would: the node name for
`<node>`, the by-hand script's documented settings (a local tarball, this node's containerd
config and shim directory), a kubeconfig whose context namespace is `user-path` (so the
deployment does not meet the other tests' one in `default`), and buildah's storage in a
temporary directory. Before the blocks run, the node forgets the image, so the pods can only
start from what the user's `buildah push` put into the registry: their image digest must be
the one the registry serves for the tag."""

import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import textwrap
import tomllib
from pathlib import Path

import pytest

from cluster_helpers import NETNS, ROOT, claim_lines

NODE = "spin-visits-node"
NAMESPACE = "user-path"
IMAGE = "localhost:5000/spin-visits:0.1.0"
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+03:00$", re.M)


def doc_blocks(path, heading):
    """The ```sh blocks of one `## heading` section, dedented (some sit in list items)."""
    text = path.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end != -1 else len(text)]
    blocks = re.findall(r"^([ \t]*)```sh\n(.*?)^\1```", section, re.S | re.M)
    return [textwrap.dedent(body) for _, body in blocks]


class UserShell:
    """Runs blocks as a user's shell in the node's network namespace would; what a block
    leaves in the background (`kubectl port-forward ... &`) is ended with the test."""

    def __init__(self, workdir, env):
        self.workdir = workdir
        self.env = env
        self.groups = []
        self.count = 0

    def run(self, block, timeout=300, **settings):
        self.count += 1
        log = self.workdir / f"block-{self.count}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{NETNS}", "--",
                 "bash", "-e", "-o", "pipefail", "-c", block],
                cwd=ROOT, env={**self.env, **settings}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
            self.groups.append(proc.pid)
            code = proc.wait(timeout=timeout)
        output = log.read_text()
        assert code == 0, f"this block failed ({code}):\n{block}\n---- its output ----\n{output}"
        return output

    def close(self):
        for group in self.groups:
            try:
                os.killpg(group, signal.SIGTERM)
            except ProcessLookupError:
                pass


@pytest.fixture
def user(cluster, tmp_path):
    work = tmp_path / "user"
    work.mkdir()
    # The node's in-namespace admin kubeconfig (the API server at the node's address), its
    # context namespace set to the test's own.
    kubeconfig = work / "kubeconfig"
    shutil.copy(cluster.state / "admin.kubeconfig", kubeconfig)
    subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "config", "set-context",
                    "--current", f"--namespace={NAMESPACE}"], check=True, capture_output=True)
    cluster.kubectl("create", "namespace", NAMESPACE)
    storage = work / "containers"
    (work / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{storage}/root"\nrunroot = "{storage}/run"\n')
    shell = UserShell(work, {**os.environ, "KUBECONFIG": str(kubeconfig),
                             "CONTAINERS_STORAGE_CONF": str(work / "storage.conf")})
    try:
        yield shell
    finally:
        shell.close()
        cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
        # vfs layers are plain directories: removed with the test's files, nothing mounted.
        shutil.rmtree(storage, ignore_errors=True)


def forget_image(cluster, name):
    """Removes every reference the node's containerd has to NAME's image (its tag, digest and
    CRI's id), so a pod of NAME has to be pulled."""
    rows = [line.split() for line in cluster.ctr("images", "ls").splitlines()[1:]]
    digests = {row[2] for row in rows if row[0] == name}
    refs = [row[0] for row in rows if row[2] in digests]
    if refs:
        cluster.ctr("images", "rm", *refs)
    assert name not in cluster.ctr("images", "ls", "-q").split()


def registry_digest(cluster, repository, tag):
    head = cluster.in_node(
        "curl", "-sfI", "-H", "Accept: application/vnd.oci.image.manifest.v1+json",
        "-H", "Accept: application/vnd.oci.image.index.v1+json",
        f"http://127.0.0.1:5000/v2/{repository}/manifests/{tag}").stdout
    return re.search(r"(?im)^docker-content-digest:\s*(\S+)", head).group(1)


def raw(cluster, path):
    return json.loads(cluster.kubectl("get", "--raw", path).stdout)


def shim_tarball(cluster, work):
    """A release-shaped tarball of the shim `up` installed (the by-hand script's SHIM_TARBALL)."""
    path = work / "shim.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(cluster.state / "bin" / "containerd-shim-wasmtime-v1",
                    arcname="containerd-shim-wasmtime-v1")
    return path


def test_the_documented_steps_deploy_what_the_user_pushed(cluster, user):
    # Step 1, runtime-class/README.md "By hand": the script, then the label and RuntimeClass.
    install, label_and_class = doc_blocks(ROOT / "runtime-class" / "README.md", "By hand")
    assert "<node>" in label_and_class
    containerd_config = cluster.state / "config" / "containerd.toml"
    out = user.run(install, SHIM_TARBALL=str(shim_tarball(cluster, user.workdir)),
                   CONTAINERD_CONFIG=str(containerd_config), BIN_DIR=str(cluster.state / "bin"),
                   RESTART=f"{ROOT}/scripts/cluster.sh restart-containerd")
    # `up` ran the same script, so this one changes nothing and leaves containerd running.
    assert "already has a wasmtime runtime" in out and "not restarted" in out
    user.run(label_and_class.replace("<node>", NODE))
    assert cluster.json("get", "runtimeclass", "wasmtime")["handler"] == "wasmtime"
    assert cluster.json("get", "node", NODE)["metadata"]["labels"]["wasmtime"] == "true"
    # The driver the script gave the shim is the kubelet's.
    runtime = tomllib.loads(containerd_config.read_text())["plugins"][
        "io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["wasmtime"]
    kubelet = raw(cluster, f"/api/v1/nodes/{NODE}/proxy/configz")
    driver = kubelet["kubeletconfig"]["cgroupDriver"]
    assert runtime["options"]["SystemdCgroup"] == (driver == "systemd"), (runtime, driver)

    build, apply, visit, read_log = doc_blocks(ROOT / "docs" / "kubernetes.md",
                                               "Deploy, step by step")
    forget_image(cluster, IMAGE)
    # Step 2: build and push. Step 3: apply and wait.
    user.run(build, timeout=900)
    pushed = registry_digest(cluster, "spin-visits", "0.1.0")
    user.run(apply, timeout=400)

    pods = {p["metadata"]["name"]: p
            for p in cluster.json("get", "pods", "-n", NAMESPACE, "-l",
                                  "app.kubernetes.io/name=spin-visits")["items"]}
    assert sorted(pods) == ["visits-0", "visits-1", "visits-2"]
    for name, pod in pods.items():
        assert pod["spec"]["runtimeClassName"] == "wasmtime"
        status = pod["status"]["containerStatuses"][0]
        assert status["ready"], name
        assert status["imageID"] == f"localhost:5000/spin-visits@{pushed}", (name, status)
        claim = cluster.json("get", "pvc", "-n", NAMESPACE, f"data-{name}")
        assert claim["status"]["phase"] == "Bound"
    pulled = [e["message"] for e in cluster.json("get", "events", "-n", NAMESPACE)["items"]
              if e["reason"] == "Pulled"]
    assert any(f'Successfully pulled image "{IMAGE}"' in m for m in pulled), pulled
    access = (cluster.state / "logs" / "registry.log").read_text()
    assert f'"GET /v2/spin-visits/manifests/{pushed} HTTP/1.1" 200' in access
    assert "containerd/" in access

    # The shim put each task where the kubelet's driver puts the pod (cgroupfs here:
    # <cgroupRoot>/kubepods/<qos>/pod<uid>/<container>), so the kubelet has its metrics.
    summary = raw(cluster, f"/api/v1/nodes/{NODE}/proxy/stats/summary")
    memory = {p["podRef"]["name"]: p["containers"][0].get("memory", {}).get("workingSetBytes")
              for p in summary["pods"] if p["podRef"]["namespace"] == NAMESPACE}
    for name, pod in pods.items():
        cid = pod["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
        qos = pod["status"]["qosClass"].lower()
        expected = f"/spin-visits-node/kubepods/{qos}/pod{pod['metadata']['uid']}/{cid}"
        cgroups = Path(f"/proc/{cluster.task_pid(pod)}/cgroup").read_text()
        assert re.search(rf"^\d+:memory:{re.escape(expected)}$", cgroups, re.M), cgroups
        assert memory.get(name), f"no memory figures for {name} from the kubelet: {memory}"

    # Step 4: nine visits through `kubectl port-forward svc/visits`, each naming its replica.
    served = re.findall(r"(?im)^x-served-by: (\S+)\s*$", user.run(visit, timeout=120))
    assert len(served) == 9 and set(served) <= set(pods), served
    # Step 5: visits-1's log as stored on its claim, and its start-up line.
    out = user.run(read_log, timeout=120)
    stored = claim_lines(cluster.claim_dir("data-visits-1", NAMESPACE))
    assert RECORD.findall(out) == stored
    assert len(stored) == served.count("visits-1")
    assert "spin-visits-server: pod visits-1 serving /data" in out
