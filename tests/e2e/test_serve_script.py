"""The README's serve command, run as a user would: scripts/serve.sh serves the app (the Spin
component, or with --server the server component), each visit lands in the data directory, and
/visits/all shows this one replica."""

import json
import os
import subprocess
import urllib.request

import pytest

from conftest import ROOT, free_port, wait_until


def get(url, headers=None):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
        return r.status, r.read().decode()


@pytest.mark.parametrize("flags", [[], ["--server"]], ids=["spin", "server"])
def test_serve_script_serves_and_records_visits(tmp_path, flags):
    addr = f"127.0.0.1:{free_port()}"
    data = tmp_path / "data"
    process = subprocess.Popen(
        ["bash", str(ROOT / "scripts/serve.sh"), *flags],
        env={**os.environ, "ADDR": addr, "DATA": str(data)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: _answers(f"http://{addr}/healthz"), seconds=300)
        for _ in range(2):
            assert get(f"http://{addr}/")[0] == 200
        assert len((data / "visits.txt").read_text().splitlines()) == 2
        status, body = get(f"http://{addr}/visits/all", {"Accept": "application/json"})
        view = json.loads(body)
        assert view["total"] == 2 and view["replicas"][0]["pod"] == "local"
    finally:
        process.kill()
        process.wait()


def _answers(url):
    try:
        return get(url)[0] == 200
    except OSError:
        return False
