"""The Spin component under Spin's own runtime: docs/spin.md's `spin up` command (read from
the doc, so the two cannot drift) serving a temporary copy of the app, with the repo's
spin.toml as it is but for its port (and, for /visits/all, its peers). What Spin adds over
`wasmtime serve` is checked here: `files` mounted from ./data (writable only with
--allow-transient-write), outbound HTTP only to `allowed_outbound_hosts`, and a fresh
instance per request, many at once."""

import json
import os
import re
import shlex
import subprocess
import threading
import time
import tomllib
from collections import Counter
from http.client import HTTPConnection, HTTPException

import pytest

from conftest import ROOT, free_port
from spin_runtime import SPIN_TOML, make_app, readme_line, readme_spin_up_flags, spin_up  # noqa: F401

RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+03:00$")
SHOWN_TIME = re.compile(r'<time id="moscow-time" datetime="([^"]+)"')


def lines(app):
    path = app / "data" / "visits.txt"
    return path.read_text().splitlines() if path.exists() else []


def snapshot(directory):
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir())


def test_readme_build_line_is_spin_tomls_build_command():
    """docs/spin.md's build line is spin.toml's own build command (what `spin build` and
    `spin up --build` run); running it, word for word, leaves the component spin.toml names."""
    manifest = tomllib.loads(SPIN_TOML.read_text())
    component = manifest["component"]["visits"]
    build = readme_line("cargo build")
    assert build == component["build"]["command"]
    subprocess.run(shlex.split(build), cwd=ROOT, check=True, capture_output=True)
    assert (ROOT / component["source"]).stat().st_size > 0
    assert {"--direct-mounts", "--allow-transient-write"} <= set(readme_spin_up_flags())


def test_every_route_under_spins_trigger(tmp_path, spin_up):
    port = free_port()
    app = make_app(tmp_path / "app", port)
    spin = spin_up(app, port)

    status, headers, page = spin.get("/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    (recorded,) = lines(app)
    assert SHOWN_TIME.search(page).group(1) == recorded
    assert spin.get("/")[0] == 200
    first, second = lines(app)

    status, headers, body = spin.get("/visits")
    assert (status, headers["x-visit-count"], body) == (200, "2", f"{first}\n{second}\n")
    assert spin.get("/visits?tail=1")[2] == f"{second}\n"
    assert spin.get("/visits?tail=x")[0] == 400
    listing = json.loads(spin.get("/visits", {"Accept": "application/json"})[2])
    assert listing == {"pod": "local", "count": 2, "first": 1, "visits": [first, second]}
    assert json.loads(spin.get("/visits?format=json&tail=1")[2])["visits"] == [second]
    status, _, body = spin.get("/healthz")
    assert status == 200 and body.strip() == "ok"
    assert spin.get("/readyz")[0] == 200
    metrics = spin.get("/metrics")[2]
    assert 'visits_total{pod="local"} 2' in metrics
    assert f'visits_log_size_bytes{{pod="local"}} {2 * 33}' in metrics
    view = json.loads(spin.get("/visits/all?format=json")[2])
    assert view["total"] == 2
    # The Spin component asks its peers afresh for every view: its entries are 0 ms old.
    assert view["replicas"] == [{"peer": spin.addr, "age_ms": 0, "up": True, "pod": "local",
                                 "count": 2, "last": [first, second]}]
    status, headers, html = spin.get("/visits/all")
    assert status == 200 and 'class="bar"' in html

    # Refusals: none of them records a visit.
    assert spin.get("/nowhere")[0] == 404
    status, headers, _ = spin.request("POST", "/")
    assert (status, headers["allow"]) == (405, "GET")
    status, headers, _ = spin.request("DELETE", "/visits")
    assert (status, headers["allow"]) == (405, "GET, HEAD")
    assert spin.request("HEAD", "/visits")[0] == 200
    assert spin.request("GET", "/", body=b"x")[0] == 400
    assert len(lines(app)) == 2

    for path in ("/", "/visits", "/healthz", "/readyz", "/metrics", "/visits/all", "/nowhere"):
        headers = spin.get(path)[1]
        assert headers["x-served-by"] == "local", path
        assert headers["cache-control"] == "no-store", path


def test_visits_land_in_the_mounted_data_directory_and_survive_a_restart(tmp_path, spin_up):
    checkout_data = snapshot(ROOT / "data")
    port = free_port()
    app = make_app(tmp_path / "app", port)
    spin = spin_up(app, port)
    shown = [SHOWN_TIME.search(spin.get("/")[2]).group(1) for _ in range(3)]
    assert lines(app) == shown, "each visit is a line in the copy's ./data/visits.txt"
    spin.stop()

    spin = spin_up(app, port)
    assert spin.get("/visits")[1]["x-visit-count"] == "3", "the log survived the restart"
    shown.append(SHOWN_TIME.search(spin.get("/")[2]).group(1))
    assert lines(app) == shown
    assert snapshot(ROOT / "data") == checkout_data, "the checkout's data/ is never written"


def test_without_allow_transient_write_the_mount_is_read_only(tmp_path, spin_up):
    """Today's troubleshooting advice, tested: the flag names itself in the 503."""
    port = free_port()
    app = make_app(tmp_path / "app", port)
    flags = [flag for flag in readme_spin_up_flags() if flag != "--allow-transient-write"]
    spin = spin_up(app, port, flags)
    for path in ("/", "/readyz"):
        status, _, reason = spin.get(path)
        assert status == 503, (path, status, reason)
        assert "read-only" in reason and "--allow-transient-write" in reason, reason
    assert spin.get("/healthz")[0] == 200
    assert spin.get("/visits")[0] == 200
    assert list((app / "data").iterdir()) == [], "nothing written"


def test_cluster_view_asks_allowed_peers_and_reports_others_down(tmp_path, spin_up):
    a, b, c = (free_port() for _ in range(3))
    addr = {port: f"127.0.0.1:{port}" for port in (a, b, c)}
    peer_b = spin_up(make_app(tmp_path / "b", b), b)
    for _ in range(2):
        peer_b.get("/")
    # a may call b; c names b as a peer but may call only itself.
    allowed = spin_up(make_app(tmp_path / "a", a, peers=f"{addr[a]},{addr[b]}",
                               allowed=[addr[a], addr[b]]), a)
    denied = spin_up(make_app(tmp_path / "c", c, peers=f"{addr[c]},{addr[b]}",
                              allowed=[addr[c]]), c)

    status, _, body = allowed.get("/visits/all?format=json")
    assert status == 200
    replicas = json.loads(body)["replicas"]
    assert [(r["peer"], r["up"], r.get("count")) for r in replicas] == [
        (addr[a], True, 0), (addr[b], True, 2)]

    status, _, body = denied.get("/visits/all?format=json")
    # The status goes out before the peers are asked, so a trap shows as a 500 (before) or
    # as a cut-off body and a trap in Spin's log (after): neither may happen.
    assert status == 200, f"a denied peer is reported, never a trap: {status} {body}"
    assert "wasm trap" not in denied.output(), "the component trapped:\n" + denied.output()
    assert body, "an empty answer: the component trapped mid-response"
    mine, theirs = json.loads(body)["replicas"]
    assert mine["up"] and mine["peer"] == addr[c]
    assert theirs["peer"] == addr[b] and theirs["up"] is False
    # Spin's own refusal, not a connection failure: b is up and answers directly.
    assert "HttpRequestDenied" in theirs["reason"], theirs
    assert peer_b.get("/healthz")[0] == 200
    status, _, html = denied.get("/visits/all")
    assert status == 200 and "HttpRequestDenied" in html


CONNECTIONS, VISITS = 32, 2000
SHOWN_COUNT = re.compile(r'<strong id="visit-count">(\d+)</strong>')


def shown_visit(page):
    """(recorded time, count) as the visit page shows them."""
    return SHOWN_TIME.search(page).group(1), int(SHOWN_COUNT.search(page).group(1))


def visit_concurrently(spin, visits=VISITS):
    """`visits` visits to / over CONNECTIONS keep-alive connections at once: (the (time, count)
    each page showed, failures)."""
    shown, failures = [], []

    def client(count):
        connection = HTTPConnection(spin.addr, timeout=60)
        try:
            for _ in range(count):
                connection.request("GET", "/")
                response = connection.getresponse()
                page = response.read().decode()
                if response.status != 200:
                    failures.append((response.status, page))
                    continue
                shown.append(shown_visit(page))
        except OSError as error:
            failures.append(("connection", repr(error)))
        finally:
            connection.close()

    share = [visits // CONNECTIONS + (i < visits % CONNECTIONS) for i in range(CONNECTIONS)]
    threads = [threading.Thread(target=client, args=(n,)) for n in share]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return shown, failures


def assert_counts_keep_the_promise(shown, on_disk):
    """The promise (docs/operations.md) for counts: each visit's count is the number of a line holding its
    own time, so a count repeats only among visits recorded in the same microsecond (twins,
    whose lines are identical), and every other count is the visit's own line's number."""
    wrong = [(time, count, on_disk[count - 1] if 0 < count <= len(on_disk) else None)
             for time, count in shown
             if not 0 < count <= len(on_disk) or on_disk[count - 1] != time]
    assert wrong == [], f"{len(wrong)} counts naming another visit's line (time, count, line): {wrong[:5]}"


def test_concurrent_visits_through_spins_trigger_are_whole_and_none_lost(tmp_path, spin_up):
    """Spin instantiates per request, many at once, each appending to the same file."""
    port = free_port()
    app = make_app(tmp_path / "app", port)
    spin = spin_up(app, port)
    shown, failures = visit_concurrently(spin)

    assert failures == [], failures[:5]
    assert len(shown) == VISITS
    on_disk = lines(app)
    assert len(on_disk) == VISITS, f"{len(on_disk)} lines for {VISITS} acknowledged visits"
    torn = [line for line in on_disk if not RECORD.match(line)]
    assert torn == [], f"{len(torn)} torn lines, e.g. {torn[:3]}"
    assert Counter(on_disk) == Counter(time for time, _ in shown), \
        "each acknowledged visit is on disk exactly once"
    assert spin.get("/visits")[1]["x-visit-count"] == str(VISITS)


def test_concurrent_visits_each_show_their_own_lines_count(tmp_path, spin_up):
    port = free_port()
    app = make_app(tmp_path / "app", port)
    spin = spin_up(app, port)
    shown, failures = visit_concurrently(spin)
    assert failures == []
    on_disk = lines(app)
    assert len(on_disk) == len(shown) == VISITS
    assert_counts_keep_the_promise(shown, on_disk)
    repeated = {count: times for count, times in Counter(c for _, c in shown).items() if times > 1}
    twins = sum(times for line, times in Counter(on_disk).items() if times > 1)
    print(f"{len(repeated)} counts shown more than once; {twins} of {VISITS} lines have a twin")


def test_a_killed_host_leaves_nothing_that_slows_or_breaks_later_visits(tmp_path, spin_up):
    """kill -9 of Spin's host in the middle of visits and /readyz probes, beside the probe
    files earlier crashes left: after a restart every visit is recorded with the
    count the promise gives, and the first /readyz leaves nothing in the directory but the
    log."""
    port = free_port()
    app = make_app(tmp_path / "app", port)
    data = app / "data"
    # The probe removes leftovers older than a minute, so none can be a live instance's.
    long_ago = time.time() - 120
    planted = [".visits.txt.probe-00c0ffee00c0ffee", ".visits.txt.probe-0123456789abcdef"]

    def plant():
        for name in planted:
            (data / name).write_bytes(b"")
            os.utime(data / name, (long_ago, long_ago))

    plant()
    spin = spin_up(app, port)

    acknowledged, failures, killed = [], [], threading.Event()

    def client(path):
        connection = HTTPConnection(spin.addr, timeout=30)
        try:
            while not killed.is_set():
                connection.request("GET", path)
                response = connection.getresponse()
                page = response.read().decode()
                if response.status != 200:
                    failures.append((path, response.status, page))
                elif path == "/":
                    acknowledged.append(shown_visit(page))
        except (OSError, HTTPException):
            pass  # the host was killed under this request
        finally:
            connection.close()

    clients = [threading.Thread(target=client, args=(path,))
               for path in ["/"] * 8 + ["/readyz"] * 2]
    for thread in clients:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    killed.set()
    spin.stop()  # SIGKILL to the host's process group
    for thread in clients:
        thread.join()
    assert failures == [], failures[:5]
    assert len(acknowledged) >= 300, "the visits never got going"

    before = lines(app)
    assert [line for line in before if not RECORD.match(line)] == [], "no torn line"
    assert not Counter(t for t, _ in acknowledged) - Counter(before), "an acknowledged visit is lost"
    assert_counts_keep_the_promise(acknowledged, before)
    left = {path.name for path in data.iterdir()} - {"visits.txt"}
    assert left - set(planted) <= {name for name in left if name.startswith(".visits.txt.probe-")}, left
    # What the kill left is as old as the planted files once a minute has passed; the
    # planted ones may have gone with a /readyz before the kill, so they come back.
    for name in left:
        os.utime(data / name, (long_ago, long_ago))
    plant()

    spin = spin_up(app, port)
    shown, failures = visit_concurrently(spin, 500)
    assert failures == [], failures[:5]
    after = lines(app)
    assert len(after) == len(before) + 500
    assert_counts_keep_the_promise(shown, after)
    assert min(count for _, count in shown) > len(before), "later visits count on from the log"
    assert spin.get("/readyz")[0] == 200
    assert [path.name for path in data.iterdir()] == ["visits.txt"], "the leftovers are gone"
    assert spin.get("/")[0] == 200 and len(lines(app)) == len(after) + 1


def mount_failing_log(mount, work, records=300_000):
    """`mount` becomes a read-only ext2 volume whose visits.txt (records lines, 9.9 MB) cannot
    be read past its first 3 MB: the image's loop device is cut to 4 MiB after the log's last
    70 KB were read into the page cache (so opening the log and finding its end succeed).
    Returns the cleanup. Needs root (losetup, mount), as CI has."""
    content = work / "content"
    content.mkdir()
    with open(content / "visits.txt", "w") as log:
        for i in range(records):
            seconds, micros = divmod(i, 1000)
            log.write(f"2026-01-01 {seconds // 3600:02}:{seconds // 60 % 60:02}:{seconds % 60:02}"
                      f".{micros * 1000 + 1:06}+03:00\n")
    image = work / "volume.img"
    run = lambda *argv: subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()  # noqa: E731
    run("truncate", "-s", "64M", str(image))
    run("mke2fs", "-q", "-t", "ext2", "-d", str(content), str(image))
    device = run("losetup", "-f", "--show", str(image))
    run("mount", "-o", "ro", device, str(mount))
    run("sh", "-c", f"tail -c 70000 {mount}/visits.txt >/dev/null")
    run("truncate", "-s", "4M", str(image))
    run("losetup", "-c", device)

    def cleanup():
        subprocess.run(["umount", str(mount)], capture_output=True)
        subprocess.run(["losetup", "-d", device], capture_output=True)
    return cleanup


def test_a_listing_that_fails_half_way_is_cut_under_spins_trigger(tmp_path, spin_up):
    """Spin's trigger, like `wasmtime serve` (tests/spin_component.rs), ends a /visits whose
    log fails to read half-way without the last chunk, so the client sees an error rather
    than a short, well-formed listing."""
    if os.geteuid() != 0:
        pytest.skip("mounts a loop device, so it needs root (as CI has)")
    port = free_port()
    app = make_app(tmp_path / "app", port)
    work = tmp_path / "volume"
    work.mkdir()
    cleanup = mount_failing_log(app / "data", work)
    try:
        runtime = spin_up(app, port)
        connection = HTTPConnection(runtime.addr, timeout=30)
        connection.request("GET", "/visits")
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("x-visit-count") == "300000"
        with pytest.raises(HTTPException):  # IncompleteRead: the chunked body never ended
            response.read()
        connection.close()
        assert "listing failed half-way" in runtime.output()
        runtime.stop()
    finally:
        cleanup()
