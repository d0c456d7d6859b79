"""A claim that turns read-only under a running pod, seen by the real kubelet. visits-2's claim
is put on an ext4 file system of its own (a loop device, mounted over the local volume's
directory inside the node while the replica is scaled away), then that file system is aborted
(`mount -o remount,abort`: what ext4 does on an I/O error with errors=remount-ro), under the
running pod. Its writes fail, /readyz turns 503, the kubelet's readiness probe marks the pod
unready and the endpoint leaves the Service, which keeps answering from the other two.

(A read-only remount of the container's /data is refused with EBUSY while the server holds its
log open for writing, and a read-only bind over it changes nothing for an open descriptor.)"""

import subprocess

from cluster_helpers import PODS, ready

TWO = PODS[:2]


def in_node_mount(cluster, *cmd):
    holder = (cluster.state / "run" / "holder.pid").read_text().strip()
    return subprocess.run(["nsenter", "--target", holder, "--mount", "--", *cmd],
                          check=True, capture_output=True, text=True, timeout=60)


def endpoint(cluster, ip):
    """The Service `visits` endpoint of ip: its `ready` condition, or None if absent."""
    slices = cluster.json("get", "endpointslices", "-l", "kubernetes.io/service-name=visits")
    for s in slices["items"]:
        for e in s.get("endpoints") or []:
            if ip in e["addresses"]:
                return e["conditions"].get("ready")
    return None


def scale(cluster, replicas):
    cluster.kubectl("scale", "statefulset/visits", f"--replicas={replicas}")
    if replicas == 2:
        cluster.wait("visits-2 gone", lambda: "visits-2" not in cluster.pods(), timeout=120)
    else:
        return cluster.wait("three Ready pods", lambda: cluster.all_ready(PODS), timeout=180)


def test_a_claim_turning_read_only_takes_the_pod_out_of_the_service(cluster):
    cluster.deploy_server()
    directory = cluster.claim_dir("data-visits-2")
    image = cluster.state / "readonly-claim.img"
    scale(cluster, 2)
    mounted = False
    try:
        subprocess.run(["truncate", "-s", "32M", str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, timeout=60)
        in_node_mount(cluster, "mount", "-o", "loop", str(image), str(directory))
        mounted = True
        pods = scale(cluster, 3)
        ip = pods["visits-2"]["status"]["podIP"]
        status, headers, body = cluster.http(f"http://{ip}:8080/")
        assert status == 200, body
        assert endpoint(cluster, ip) is True

        in_node_mount(cluster, "mount", "-o", "remount,abort", str(directory))
        status, _, body = cluster.http(f"http://{ip}:8080/")
        # Refused with the reason, not a half-written line.
        assert status == 503 and "read-only" in body, (status, body)
        status, _, body = cluster.http(f"http://{ip}:8080/readyz")
        assert status == 503 and "read-only" in body, (status, body)
        cluster.wait("visits-2 unready", lambda: not ready(cluster.pods()["visits-2"]), timeout=60)
        cluster.wait("visits-2's endpoint out of the Service",
                     lambda: endpoint(cluster, ip) is not True, timeout=60)
        service_ip = cluster.json("get", "service", "visits")["spec"]["clusterIP"]
        for _ in range(15):
            status, headers, body = cluster.http(f"http://{service_ip}/")
            assert status == 200, body
            assert headers["x-served-by"] in TWO
    finally:
        scale(cluster, 2)
        if mounted:
            in_node_mount(cluster, "umount", "-l", str(directory))
        image.unlink(missing_ok=True)
        scale(cluster, 3)
