"""The `cluster` fixture: scripts/cluster.sh's node, up for the session (see cluster_helpers)."""

import os
import subprocess

import pytest

from cluster_helpers import CLUSTER_SH, Cluster, built_or_skip, cluster_env


@pytest.fixture(scope="session")
def cluster():
    built_or_skip()
    up = subprocess.run([str(CLUSTER_SH), "up"], capture_output=True, text=True, timeout=3600)
    if up.returncode != 0:
        pytest.fail(f"scripts/cluster.sh up failed ({up.returncode}):\n{up.stderr[-4000:]}")
    last = up.stdout.strip().splitlines()[-1]
    assert last.startswith("export KUBECONFIG="), up.stdout
    _, state = cluster_env()
    yield Cluster(last.split("=", 1)[1], state)
    if os.environ.get("CLUSTER_KEEP") != "1":
        subprocess.run([str(CLUSTER_SH), "down"], check=True, timeout=300)
