"""Forwards a loopback port on the host to an address inside the node's network namespace.

    python3 forward.py NETNS_PATH TARGET_HOST TARGET_PORT PORT_FILE

Listens on 127.0.0.1 (a free port, written to PORT_FILE once listening) in the host's namespace,
then joins NETNS_PATH, so every connection it opens to TARGET goes inside the node: the cluster's
private addresses never exist on the host, and kubectl there reaches the API server through
loopback. setns() changes only the calling thread's namespace, so the listener is made first and
the connecting sockets are all made by this (main) thread.
"""

import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def pump(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def serve(client, upstream):
    back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    back.start()
    pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def main():
    netns, host, port, port_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(netns, os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        sys.exit(f"setns {netns}: {os.strerror(ctypes.get_errno())}")
    os.close(fd)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{listener.getsockname()[1]}\n")
    os.replace(tmp, port_file)
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection((host, port), timeout=5)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        threading.Thread(target=serve, args=(client, upstream), daemon=True).start()


if __name__ == "__main__":
    main()
