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


def run(tmp_path, tarball, config):
    bin_dir = tmp_path / "bin"
    restarted = tmp_path / "restarted"
    result = subprocess.run(
        ["sh", str(SCRIPT)], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "SHIM_TARBALL": str(tarball), "CONTAINERD_CONFIG": str(config),
             "BIN_DIR": str(bin_dir), "RESTART": f"touch {restarted}"},
    )
    assert result.returncode == 0, result.stderr
    assert restarted.exists(), "containerd was restarted"
    return bin_dir, result.stdout


@pytest.mark.parametrize("version, plugin", [
    (2, "io.containerd.grpc.v1.cri"),
    (3, "io.containerd.cri.v1.runtime"),
])
def test_installs_the_shim_and_registers_the_runtime_once(tmp_path, tarball, version, plugin):
    config = tmp_path / "config.toml"
    config.write_text(f"version = {version}\n\n[plugins]\n")
    bin_dir, _ = run(tmp_path, tarball, config)
    shim = bin_dir / "containerd-shim-wasmtime-v1"
    assert shim.exists() and shim.stat().st_mode & 0o111
    assert sorted(p.name for p in bin_dir.iterdir()) == ["containerd-shim-wasmtime-v1"]

    parsed = tomllib.loads(config.read_text())
    runtimes = parsed["plugins"][plugin]["containerd"]["runtimes"]
    assert runtimes == {"wasmtime": {"runtime_type": "io.containerd.wasmtime.v1"}}

    _, second = run(tmp_path, tarball, config)
    assert "already has a wasmtime runtime" in second
    assert config.read_text().count("runtimes.wasmtime]") == 1
