"""Fair at the cap (issue 22) on the node runtime: the rendered StatefulSet's pod on a private
containerd with the release shim and ctr's RLIMIT_NOFILE 1024:1024, in its own network
namespace (node_pods.py's `node` and `pods` fixtures), as tests/server_fair.rs checks it
on `wasmtime run`:

- an idle flood: 1 000 idle connections (more than MAX_CONNECTIONS 900 and than the pod's
  descriptors), then 4 keep-alive clients, each answered within seconds;
- stuck readers: 63 clients stop reading a 24 MB /visits at MAX_CONNECTIONS 64 beside one
  reading at 1 MB/s: newcomers are answered long before the 30 s write deadline, and the
  steady reader gets the whole log;
- turns: 1 100 closed-loop clients at MAX_CONNECTIONS 900 (the issue's measurement): every
  client is served, none far less often than the mean, and the server ended connections
  after their turn (`visits_connections_turns_ended_total`).

Each fails on the server before issue 22 (NODE_IMAGE_CONTEXT names a checkout whose target/
holds that build): newcomers then wait for the 60 s idle or the 30 s write deadline, and
some of the 1 100 closed-loop clients get one answer or none while the others get a hundred.
Skips, saying why, where the shim or root is missing."""

import errno
import http.client
import select
import selectors
import socket
import threading
import time

from conftest import wait_until
from test_node_bounds import PLANTED_LINES, ask, plant, planted_log, read_head
from node_pods import dechunk, http_get, node, pods, raised_file_limit  # noqa: F401 (fixtures)

IDLE = 1000
NEWCOMERS = 4
# The target is a first answer within 1 s; before it, a newcomer waited for the 60 s
# idle timeout. Room for a loaded runner, far below the deadline it replaces.
FIRST_ANSWER_BOUND = 5.0
NEWCOMER_SECONDS = 2.0

READERS_CAP = 64
# MIN_RATE_WINDOW_SECONDS as the StatefulSet leaves it (the server's default): a stopped reader
# is judged once its write has waited this long.
MIN_RATE_WINDOW = 5.0
# The target is 2 s; here a newcomer comes a window after the readers stopped and is
# answered within milliseconds. Before issue 22 the first one waited 13.8 s (until slots
# freed 20 s after the readers stopped), so the bound leaves room both ways.
READER_NEWCOMER_BOUND = 6.0
# About 1 MB/s, 2 000 times the minimum rate, and slow enough that the 24 MB last until well
# after the newcomers: its slot is not one that frees up by itself.
STEADY_READ = 32 * 1024
STEADY_PAUSE = 0.03

# The closed loop: more clients than MAX_CONNECTIONS (900) and than the pod's
# descriptors; 200 always wait for a slot.
TURN_CLIENTS = 1100
TURN_SECONDS = 8.0


def pod_name(pods):
    return f"{pods.statefulset['metadata']['name']}-0"


def metrics(address):
    status, text = http_get(*address, "/metrics", 10)
    assert status == 200, text
    return text


def sample(text, name, label=""):
    """The value of `name{...}` whose labels include `label`, or None."""
    for line in text.splitlines():
        if line.startswith(name + "{") and label in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def keep_alive_client(address, until, result):
    """`/healthz` one after another on a kept-alive connection (http.client reconnects after a
    `Connection: close`) until `until`: when the first answer came, answers, failures."""
    started = time.monotonic()
    connection = http.client.HTTPConnection(*address, timeout=until - started + 5)
    first, answers, failures = None, 0, []
    try:
        while time.monotonic() < until:
            try:
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as error:
                failures.append(repr(error))
                connection.close()
                continue
            if response.status != 200:
                failures.append(response.status)
                continue
            answers += 1
            if first is None:
                first = time.monotonic() - started
    finally:
        connection.close()
    result.update(first=first, answers=answers, failures=failures)


def closed_by_server(sock):
    """Whether the server closed a connection this client never used (readable means EOF);
    poll, as select() takes no descriptor past 1023."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def test_newcomers_behind_1000_idle_connections_are_answered(pods):
    pod = pods.start(pod_name(pods))
    address = (pod.ip, pods.http_port)
    assert pod.open_file_limits() == ["1024", "1024"], "expected ctr's default RLIMIT_NOFILE"
    assert wait_until(lambda: http_get(*address, "/readyz", 5)[0] == 200, 30), "never ready"
    idle, results = [], [{} for _ in range(NEWCOMERS)]
    with raised_file_limit(2 * IDLE + 256):
        try:
            # Connections that never send a byte: 900 take every slot, 100 wait in the backlog.
            idle = [socket.create_connection(address, timeout=5) for _ in range(IDLE)]
            time.sleep(1.0)
            until = time.monotonic() + NEWCOMER_SECONDS
            threads = [threading.Thread(target=keep_alive_client, args=(address, until, result))
                       for result in results]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(NEWCOMER_SECONDS + 15)
            closed = sum(closed_by_server(sock) for sock in idle)
        finally:
            for sock in idle:
                sock.close()
    shed = sample(metrics(address), "visits_connections_shed_total", 'reason="idle"')
    print(f"\nFAIR node runtime (release shim, RLIMIT_NOFILE 1024:1024, MAX_CONNECTIONS 900): "
          f"{NEWCOMERS} keep-alive clients behind {IDLE} idle connections: first answers after "
          f"{[None if r.get('first') is None else round(r['first'], 2) for r in results]} s, "
          f"answers in {NEWCOMER_SECONDS} s {[r.get('answers') for r in results]}, failures "
          f"{[len(r.get('failures', [])) for r in results]}; {closed} idle connections closed by "
          f"the server, visits_connections_shed_total{{reason=idle}} {shed}")
    for result in results:
        assert result.get("first") is not None, f"a newcomer got no answer: {results}"
        assert result["first"] <= FIRST_ANSWER_BOUND, results
        assert not result["failures"], results
    # Every connection past the 900 slots (the 100 in the backlog, the first connection of each
    # newcomer) took the slot of an idle one.
    assert shed is not None and shed >= IDLE - 900 + NEWCOMERS, shed
    assert closed >= IDLE - 900, f"only {closed} idle connections were closed"


def steady_reader(address, result):
    """`/visits` to its end, STEADY_READ bytes every STEADY_PAUSE."""
    sock = socket.create_connection(address, timeout=30)
    try:
        sock.sendall(b"GET /visits HTTP/1.1\r\nHost: visits\r\nAccept: text/plain\r\n"
                     b"Connection: close\r\n\r\n")
        status, headers, rest = read_head(sock)
        result.update(status=status, headers=headers)
        result["head"] = time.monotonic()
        body = bytearray(rest)
        while chunk := sock.recv(STEADY_READ, socket.MSG_WAITALL):
            body += chunk
            time.sleep(STEADY_PAUSE)
        if headers.get("transfer-encoding") == "chunked":
            body = dechunk(bytes(body))
        result["body"] = bytes(body)
    except OSError as error:
        result["error"] = repr(error)
    finally:
        result["done"] = time.monotonic()
        sock.close()


def newcomer(address, bound):
    """Seconds until a new connection's `/healthz` is answered, or the error."""
    started = time.monotonic()
    sock = socket.create_connection(address, timeout=bound + 5)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: visits\r\n\r\n")
        status, _, _ = read_head(sock)
        return time.monotonic() - started if status == 200 else f"answered {status}"
    except OSError as error:
        return f"no answer after {time.monotonic() - started:.1f} s: {error!r}"
    finally:
        sock.close()


def test_readers_that_stopped_yield_to_newcomers_and_a_steady_reader_gets_everything(pods):
    name = pod_name(pods)
    log = planted_log()
    plant(pods, name, log)
    pod = pods.start(name, env={"MAX_CONNECTIONS": str(READERS_CAP)})
    address = (pod.ip, pods.http_port)
    assert wait_until(lambda: http_get(*address, "/readyz", 5)[0] == 200, 30), "never ready"

    steady = {}
    reader = threading.Thread(target=steady_reader, args=(address, steady), daemon=True)
    reader.start()
    assert wait_until(lambda: "head" in steady or "error" in steady, 15), "the steady reader got no head"
    stopped = []
    try:
        # The other 63 slots: each takes its answer's head and stops reading.
        for i in range(READERS_CAP - 1):
            sock = ask(address, "/visits")
            stopped.append(sock)
            status, _, _ = read_head(sock)
            assert status == 200, f"reader {i}: {status}"
        stalled_at = time.monotonic()
        # Their writes stall within a moment, and a window later they are under the rate.
        time.sleep(MIN_RATE_WINDOW + 0.5)
        waits = []
        for _ in range(8):
            waits.append(newcomer(address, READER_NEWCOMER_BOUND))
            if not isinstance(waits[-1], float):
                break
        newcomers_done = time.monotonic()
        reader.join(60)
    finally:
        for sock in stopped:
            sock.close()
    shed = sample(metrics(address), "visits_connections_shed_total", 'reason="slow_reader"')
    body = steady.get("body", b"")
    print(f"\nFAIR node runtime (release shim, MAX_CONNECTIONS {READERS_CAP}, MIN_RATE_WINDOW_SECONDS "
          f"{MIN_RATE_WINDOW:.0f}): {READERS_CAP - 1} readers stopped on a {len(log) / 1e6:.0f} MB "
          f"/visits; {MIN_RATE_WINDOW + 0.5} s later 8 newcomers answered after "
          f"{[round(w, 2) if isinstance(w, float) else w for w in waits]} s (bound "
          f"{READER_NEWCOMER_BOUND} s; the last {newcomers_done - stalled_at:.1f} s after the "
          f"readers stopped); a reader taking {STEADY_READ // 1024} KiB every {STEADY_PAUSE * 1000:.0f} ms got "
          f"{len(body)} bytes in {steady.get('done', 0) - steady.get('head', 0):.1f} s "
          f"{steady.get('error', '')}; visits_connections_shed_total{{reason=slow_reader}} {shed}")
    assert all(isinstance(w, float) and w <= READER_NEWCOMER_BOUND for w in waits), waits
    assert not reader.is_alive(), "the steady reader hung"
    assert steady.get("status") == 200 and "error" not in steady, steady.get("error")
    assert steady["headers"].get("x-visit-count") == str(PLANTED_LINES), steady["headers"]
    assert len(body) == len(log) and body == log, f"{len(body)} bytes, not the log's {len(log)}"
    # The steady reader held its slot all through: the newcomers took stopped readers' slots.
    assert steady["done"] > newcomers_done, "the steady reader was done before the newcomers came"
    assert shed is not None and shed >= 1, shed


def closed_loop(address, clients, seconds):
    """`clients` closed-loop clients in one event loop (so the client is not what makes some
    wait): each sends `/healthz`, waits for the whole answer, sends the next on the same
    connection, and reconnects after a `Connection: close`. A kept-alive connection the server
    closed before any byte of the next answer is retried, as HTTP/1.1 clients do. Answers per
    client, failures, retries."""
    selector = selectors.DefaultSelector()
    counts, failures, retries = [0] * clients, [], [0]
    # Per client: its socket, the answer so far, whether this connection was answered before.
    state = {}

    def connect(i):
        sock = socket.socket()
        sock.setblocking(False)
        err = sock.connect_ex(address)
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, f"connect: {errno.errorcode.get(err)}")
        state[i] = [sock, b"", False]
        selector.register(sock, selectors.EVENT_WRITE, i)

    def reconnect(i):
        selector.unregister(state[i][0])
        state[i][0].close()
        connect(i)

    for i in range(clients):
        connect(i)
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        for key, events in selector.select(timeout=0.2):
            i = key.data
            sock, answer, reused = state[i]
            if events & selectors.EVENT_WRITE:
                try:
                    sock.send(b"GET /healthz HTTP/1.1\r\nHost: visits\r\n\r\n")
                except OSError as error:
                    failures.append(repr(error))
                    reconnect(i)
                    continue
                state[i][1] = b""
                selector.modify(sock, selectors.EVENT_READ, i)
                continue
            try:
                data = sock.recv(65536)
            except OSError as error:
                data, answer = b"", answer or repr(error).encode()
            if not data:
                if reused and not answer:
                    retries[0] += 1
                else:
                    failures.append(f"closed after {answer[:80]!r}")
                reconnect(i)
                continue
            answer += data
            state[i][1] = answer
            head_end = answer.find(b"\r\n\r\n")
            if head_end < 0:
                continue
            head = answer[:head_end].decode("latin-1").lower()
            length = next((int(line.split(":", 1)[1]) for line in head.split("\r\n")
                           if line.startswith("content-length:")), 0)
            if len(answer) < head_end + 4 + length:
                continue
            status = int(head.split()[1])
            if status == 200:
                counts[i] += 1
            else:
                failures.append(status)
            if "connection: close" in head:
                reconnect(i)
            else:
                state[i][1:] = [b"", True]
                selector.modify(sock, selectors.EVENT_WRITE, i)
    for sock, _, _ in state.values():
        sock.close()
    selector.close()
    return counts, failures, retries[0]


def test_clients_waiting_for_a_slot_are_served_in_turn(pods):
    pod = pods.start(pod_name(pods))
    address = (pod.ip, pods.http_port)
    assert pod.open_file_limits() == ["1024", "1024"], "expected ctr's default RLIMIT_NOFILE"
    assert wait_until(lambda: http_get(*address, "/readyz", 5)[0] == 200, 30), "never ready"
    with raised_file_limit(TURN_CLIENTS + 256):
        counts, failures, retries = closed_loop(address, TURN_CLIENTS, TURN_SECONDS)
    text = metrics(address)
    turns = sample(text, "visits_connections_turns_ended_total")
    shed_idle = sample(text, "visits_connections_shed_total", 'reason="idle"')
    mean = sum(counts) / len(counts)
    ordered = sorted(counts)
    print(f"\nFAIR node runtime (release shim, RLIMIT_NOFILE 1024:1024, MAX_CONNECTIONS 900): "
          f"{TURN_CLIENTS} closed-loop clients on /healthz for {TURN_SECONDS:.0f} s: {sum(counts)} "
          f"answers, per client min {ordered[0]} mean {mean:.0f} max {ordered[-1]} (fewest "
          f"{ordered[:8]}, {counts.count(0)} with none); {len(failures)} failures {failures[:3]}, "
          f"{retries} retried after an idle close; visits_connections_turns_ended_total {turns}")
    assert not failures, failures[:5]
    # Turns, not timings: while some clients wait for a slot, the others are not served again
    # and again. Before issue 22 the fewest got 1 answer in 8 s against a mean of 126 (in 6 s
    # runs, 115-129 of the 1 100 got none); in turn 0.2-0.5 of the mean (the less, the busier
    # the machine).
    assert ordered[0] >= max(1.0, mean / 10), f"a client got {ordered[0]} answers, the mean is {mean:.0f}"
    assert turns is not None and turns >= 1, "the server ended no connection after its turn"
    # Only a connection the server closed as idle is ever retried.
    assert retries <= (shed_idle or 0), (retries, shed_idle)
