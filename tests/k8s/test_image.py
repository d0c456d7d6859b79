"""The node image, built from the Dockerfile with buildah (no Docker engine here) and taken
apart: a wasi/wasm config whose entrypoint is the server component, one layer holding that
component and nothing else, and the extracted component serves."""

import hashlib
import io
import json
import subprocess
import tarfile

import pytest

from conftest import ROOT, SERVER_WASM, tool

IMAGE = "localhost/spin-visits:test"


@pytest.fixture(scope="module")
def oci_layout(tmp_path_factory):
    storage = tmp_path_factory.mktemp("buildah-storage")
    layout = tmp_path_factory.mktemp("oci") / "image"
    buildah = [tool("buildah"), "--storage-driver", "vfs", "--root", str(storage),
               "--runroot", str(storage / "run")]
    subprocess.run(buildah + ["bud", "--quiet", "--platform", "wasi/wasm", "-t", IMAGE, str(ROOT)],
                   check=True, capture_output=True)
    subprocess.run(buildah + ["push", "--quiet", IMAGE, f"oci:{layout}:{IMAGE}"],
                   check=True, capture_output=True)
    yield layout
    subprocess.run(buildah + ["rmi", "--all", "--force"], capture_output=True)


def blob(layout, digest):
    algorithm, hex_digest = digest.split(":")
    data = (layout / "blobs" / algorithm / hex_digest).read_bytes()
    assert hashlib.sha256(data).hexdigest() == hex_digest, "blob matches its digest"
    return data


@pytest.fixture(scope="module")
def image(oci_layout):
    index = json.loads((oci_layout / "index.json").read_text())
    (entry,) = index["manifests"]
    manifest = json.loads(blob(oci_layout, entry["digest"]))
    config = json.loads(blob(oci_layout, manifest["config"]["digest"]))
    layers = [blob(oci_layout, layer["digest"]) for layer in manifest["layers"]]
    return config, layers


def files_in(layer):
    with tarfile.open(fileobj=io.BytesIO(layer)) as archive:
        return {member.name.lstrip("./"): archive.extractfile(member).read()
                for member in archive.getmembers() if member.isfile()}


def test_config_is_wasi_wasm_with_the_component_as_entrypoint(image):
    config, _ = image
    assert config["os"] == "wasi"
    assert config["architecture"] == "wasm"
    assert config["config"]["Entrypoint"] == ["/spin-visits-server.wasm"]
    assert not config["config"].get("Cmd")


def test_the_only_content_is_the_server_component(image):
    _, layers = image
    assert len(layers) == 1
    files = files_in(layers[0])
    assert list(files) == ["spin-visits-server.wasm"]
    assert files["spin-visits-server.wasm"] == SERVER_WASM.read_bytes()


def test_the_entrypoint_alone_serves(image, tmp_path, replicas):
    _, layers = image
    wasm = tmp_path / "entrypoint.wasm"
    wasm.write_bytes(files_in(layers[0])["spin-visits-server.wasm"])
    claim = tmp_path / "claim"
    claim.mkdir()
    replica = replicas(claim, "/data", {"LISTEN_ADDR": "127.0.0.1:0", "POD_NAME": "img-0"}, wasm=wasm)
    status, headers, _ = replica.get("/")
    assert status == 200 and headers["x-served-by"] == "img-0"
    assert (claim / "visits.txt").read_text().count("\n") == 1
