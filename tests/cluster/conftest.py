"""The `cluster` fixture: scripts/cluster.sh's node, up for the session (see cluster_helpers).

Whatever happens (a failed `up`, a failed test, an interrupted session), the session ends with
`scripts/cluster.sh down`, and the teardown fails if `down` left anything behind."""

import os
import subprocess

import pytest

from cluster_helpers import CLUSTER_SH, Cluster, built_or_skip, cluster_env, leftovers

# Every `up` of the session: enough static local volumes for the server deployment scaled to
# five, the Helm release and the Spin deployment side by side (claims are retained).
os.environ.setdefault("CLUSTER_VOLUMES", "16")


def down_and_check(state):
    down = subprocess.run([str(CLUSTER_SH), "down"], capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    left = leftovers(state)
    assert left == [], f"scripts/cluster.sh down left: {left}"


@pytest.fixture(scope="session")
def cluster():
    built_or_skip()
    _, state = cluster_env()
    try:
        up = subprocess.run([str(CLUSTER_SH), "up"], capture_output=True, text=True,
                            timeout=3600)
        if up.returncode != 0:
            # The component's own log tail is in up's stderr (cluster/lib.sh `fail`).
            pytest.fail(f"scripts/cluster.sh up failed ({up.returncode}):\n{up.stderr[-6000:]}")
        last = up.stdout.strip().splitlines()[-1]
        assert last.startswith("export KUBECONFIG="), up.stdout
        yield Cluster(last.split("=", 1)[1], state)
    finally:
        if os.environ.get("CLUSTER_KEEP") != "1":
            down_and_check(state)


def pytest_collection_modifyitems(items):
    # The down/up cycle of test_lifecycle wipes every deployment: run it last, so the other
    # modules share one deployment instead of making it twice.
    items.sort(key=lambda item: item.name == "test_down_leaves_nothing")
