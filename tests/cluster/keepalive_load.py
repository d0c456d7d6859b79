"""Keep-alive load on one address, run inside the node's network namespace by the tests:

    python3 keepalive_load.py HOST PORT CLIENTS STOP_FILE

CLIENTS threads send `GET /` on keep-alive connections until STOP_FILE exists, then print one
JSON object: every acknowledged visit (served_by, the time its page showed, its count), every
failed request, and how many requests were sent again. A client reconnects when an answer says
`Connection: close` or the server closed the connection while it was idle; a request on a
reused connection that the server closed as it went out (no status line came back) is sent
again on a new connection, as HTTP clients do for a GET, and counted as `retried` (the log
check shows whether such a request was recorded). Half the clients recycle their connection
every 20 requests, so new connections keep being spread by kube-proxy."""

import http.client
import json
import os
import re
import select
import sys
import threading
import time
from collections import Counter

PAGE = re.compile(r'<time id="moscow-time" datetime="([^"]+)">.*?'
                  r'<strong id="visit-count">(\d+)</strong>', re.S)


def closed_by_peer(sock):
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(0))


def main():
    host, port, clients, stop_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    lock = threading.Lock()
    acks, failures, retried, closes = [], [], Counter(), Counter()

    def client(lifetime):
        connection, served = None, 0
        while not os.path.exists(stop_file):
            if connection is None:
                connection, served = http.client.HTTPConnection(host, port, timeout=15), 0
            reused = served > 0
            if reused and closed_by_peer(connection.sock):
                connection.close()
                connection = None
                with lock:
                    closes["closed idle"] += 1
                continue
            got_status = False
            try:
                connection.request("GET", "/")
                response = connection.getresponse()
                got_status = True
                body = response.read().decode()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = None
                with lock:
                    if (reused and not got_status and
                            isinstance(error, (ConnectionResetError, BrokenPipeError,
                                               http.client.RemoteDisconnected))):
                        retried[type(error).__name__] += 1
                    else:
                        failures.append(f"{time.time():.3f} {type(error).__name__}: {error}")
                continue
            served += 1
            page = PAGE.search(body)
            with lock:
                if response.status != 200 or not page:
                    failures.append(f"{time.time():.3f} {response.status} {body[:200]!r}")
                else:
                    acks.append((response.getheader("x-served-by"), page[1], int(page[2])))
            if response.will_close or (lifetime and served >= lifetime):
                if response.will_close:
                    with lock:
                        closes["connection: close"] += 1
                connection.close()
                connection = None

    threads = [threading.Thread(target=client, args=(None if i % 2 else 20,), daemon=True)
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    json.dump({"acks": acks, "failures": failures, "retried": dict(retried),
               "closes": dict(closes)}, sys.stdout)


if __name__ == "__main__":
    main()
