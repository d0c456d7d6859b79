"""Fair at the cap on the real node (issue 22): 1 000 idle connections to one pod, more than
its MAX_CONNECTIONS (900) and its descriptors allow, do not lock a newcomer out; the client
runs inside the node's network namespace, the only place the pod's address exists."""

import json
import subprocess
import sys

from cluster_helpers import NETNS

# Inside the node: opens IDLE connections that never send a byte, then times a newcomer's
# /healthz on a connection of its own.
CLIENT = r"""
import json, resource, socket, sys, time
ip, idle = sys.argv[1], int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
held = [socket.create_connection((ip, 8080), timeout=5) for _ in range(idle)]
time.sleep(0.5)
started = time.monotonic()
newcomer = socket.create_connection((ip, 8080), timeout=10)
newcomer.sendall(b"GET /healthz HTTP/1.1\r\nHost: visits\r\nConnection: close\r\n\r\n")
answer = b""
try:
    while chunk := newcomer.recv(4096):
        answer += chunk
except OSError as error:
    answer += repr(error).encode()
took = time.monotonic() - started
closed = 0
for sock in held:
    sock.setblocking(False)
    try:
        closed += sock.recv(1) == b""
    except BlockingIOError:
        pass
print(json.dumps({"status": answer.split(b"\r\n", 1)[0].decode(errors="replace"),
                  "seconds": took, "idle_closed": closed}))
"""


def test_a_newcomer_behind_1000_idle_connections_is_answered(cluster):
    pods = cluster.deploy_server()
    ip = pods["visits-1"]["status"]["podIP"]
    run = subprocess.run(["nsenter", f"--net=/run/netns/{NETNS}", "--", sys.executable, "-c",
                          CLIENT, ip, "1000"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    print(f"\nFAIR real node: a newcomer behind 1 000 idle connections: {result}")
    assert result["status"] == "HTTP/1.1 200 OK", result
    # An idle connection yields after a second of idleness, up to 8 at a time; before
    # issue 22 the newcomer waited for the 60 s idle timeout.
    assert result["seconds"] < 5, result
    assert result["idle_closed"] >= 100, "the idle connections beyond the cap were not the ones closed"
