"""runtime-class/by-hand/install-wasmtime-shim.sh, run for real against a local release-shaped
tarball and containerd configs of both versions (no node or network needed)."""

import subprocess
import tarfile
import tomllib

import pytest

from conftest import ROOT

SCRIPT = ROOT / "runtime-class/by-hand/install-wasmtime-shim.sh"


@pytest.fixture
def tarball(tmp_path):
    """Shaped like runwasi's release: the binary plus signing files."""
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "containerd-shim-wasmtime-v1").write_text("#!/bin/sh\necho shim\n")
    (payload / "containerd-shim-wasmtime-v1.sig").write_text("sig")
    (payload / "containerd-shim-wasmtime-v1.pem").write_text("pem")
    path = tmp_path / "shim.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for item in payload.iterdir():
            archive.add(item, arcname=item.name)
    return path


def run(tmp_path, tarball, config, **settings):
    """The script with these settings: (bin dir, stdout, whether it restarted containerd)."""
    bin_dir = tmp_path / "bin"
    restarted = tmp_path / "restarted"
    restarted.unlink(missing_ok=True)
    result = subprocess.run(
        ["sh", str(SCRIPT)], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "SHIM_TARBALL": str(tarball), "CONTAINERD_CONFIG": str(config),
             "BIN_DIR": str(bin_dir), "RESTART": f"touch {restarted}", **settings},
    )
    assert result.returncode == 0, result.stderr
    return bin_dir, result.stdout, restarted.exists()


def runtimes_of(config, plugin):
    return tomllib.loads(config.read_text())["plugins"][plugin]["containerd"]["runtimes"]


@pytest.mark.parametrize("version, plugin", [
    (2, "io.containerd.grpc.v1.cri"),
    (3, "io.containerd.cri.v1.runtime"),
])
def test_installs_the_shim_and_registers_the_runtime_once(tmp_path, tarball, version, plugin):
    config = tmp_path / "config.toml"
    config.write_text(f"version = {version}\n\n[plugins]\n")
    bin_dir, _, restarted = run(tmp_path, tarball, config)
    assert restarted, "containerd was restarted to load the new runtime"
    shim = bin_dir / "containerd-shim-wasmtime-v1"
    assert shim.exists() and shim.stat().st_mode & 0o111
    assert sorted(p.name for p in bin_dir.iterdir()) == ["containerd-shim-wasmtime-v1"]

    # No runc entry says systemd: the cgroupfs driver, stated for the shim.
    assert runtimes_of(config, plugin) == {"wasmtime": {
        "runtime_type": "io.containerd.wasmtime.v1", "options": {"SystemdCgroup": False}}}

    _, second, restarted = run(tmp_path, tarball, config)
    assert "already has a wasmtime runtime" in second
    assert not restarted, "nothing changed, so containerd keeps running"
    assert config.read_text().count("runtimes.wasmtime]") == 1


RUNC_SYSTEMD = """version = 3
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = 'io.containerd.runc.v2'
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
    SystemdCgroup = true
"""


@pytest.mark.parametrize("runc, settings, systemd", [
    (RUNC_SYSTEMD, {}, True),
    (RUNC_SYSTEMD.replace("= true", "= false"), {}, False),
    (RUNC_SYSTEMD, {"CGROUP_DRIVER": "cgroupfs"}, False),
    ("version = 3\n", {"CGROUP_DRIVER": "systemd"}, True),
])
def test_the_shim_gets_the_cgroup_driver_of_runc_or_of_the_setting(tmp_path, tarball, runc,
                                                                   settings, systemd):
    """The shim must use the kubelet's cgroup driver (runwasi #864): runc's, which already
    matches the kubelet on a working node, unless CGROUP_DRIVER says otherwise."""
    config = tmp_path / "config.toml"
    config.write_text(runc)
    _, out, _ = run(tmp_path, tarball, config, **settings)
    options = runtimes_of(config, "io.containerd.cri.v1.runtime")["wasmtime"]["options"]
    assert options == {"SystemdCgroup": systemd}
    assert f"cgroup driver {'systemd' if systemd else 'cgroupfs'}" in out


def test_an_unknown_cgroup_driver_is_refused(tmp_path, tarball):
    config = tmp_path / "config.toml"
    config.write_text("version = 3\n")
    result = subprocess.run(
        ["sh", str(SCRIPT)], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "SHIM_TARBALL": str(tarball), "CONTAINERD_CONFIG": str(config),
             "BIN_DIR": str(tmp_path / "bin"), "RESTART": "false", "CGROUP_DRIVER": "system"})
    assert result.returncode == 2
    assert "CGROUP_DRIVER must be systemd or cgroupfs" in result.stderr
    assert config.read_text() == "version = 3\n"
