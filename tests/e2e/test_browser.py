"""The pages in a real browser: headless Chromium (Debian's) loads / and /visits/all from
running server components; the rendered DOM must show what the files and peers hold, and the
screenshots it takes are the ones the README shows (docs/page.png, docs/cluster.png)."""

import shutil
import struct
import subprocess
from html.parser import HTMLParser

import pytest

from conftest import ROOT, free_port

SCREENSHOT = ROOT / "docs" / "page.png"
CLUSTER_SCREENSHOT = ROOT / "docs" / "cluster.png"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]


def chromium(tmp_path, *args):
    binary = shutil.which("chromium")
    if not binary:
        pytest.fail("chromium not found: scripts/test.sh installs Debian's chromium")
    result = subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class ById(HTMLParser):
    """The text inside each element that has an id."""

    def __init__(self):
        super().__init__()
        self.text, self._open = {}, []

    def handle_starttag(self, tag, attrs):
        element_id = dict(attrs).get("id")
        self._open.append(element_id)
        if element_id:
            self.text[element_id] = ""

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        for element_id in self._open:
            if element_id:
                self.text[element_id] += data


def test_the_page_renders_time_and_pod_and_is_screenshotted(tmp_path, replicas):
    claim = tmp_path / "claim"
    claim.mkdir()
    replica = replicas(claim, "/data", {"POD_NAME": "visits-0", "LISTEN_ADDR": "127.0.0.1:0"})
    for _ in range(2):
        replica.get("/")

    dom = chromium(tmp_path, "--dump-dom", f"http://{replica.address}/")
    shown = ById()
    shown.feed(dom)
    recorded = (claim / "visits.txt").read_text().splitlines()
    assert len(recorded) == 3, "the browser's load was one visit"
    assert shown.text["moscow-time"] == recorded[-1]
    assert shown.text["pod-name"] == "visits-0"
    assert shown.text["visit-count"] == "3"

    SCREENSHOT.parent.mkdir(exist_ok=True)
    chromium(tmp_path, f"--screenshot={SCREENSHOT}", "--window-size=900,560",
             f"http://{replica.address}/")
    png = SCREENSHOT.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (900, 560)
    assert len(png) > 10_000, "a rendered page, not a blank one"


def test_the_cluster_view_renders_every_replica_and_is_screenshotted(tmp_path, replicas):
    ports = [free_port() for _ in range(3)]
    peers = ",".join(f"127.0.0.1:{port}" for port in ports)
    started = []
    for i, port in enumerate(ports):
        claim = tmp_path / f"data-visits-{i}"
        claim.mkdir()
        env = {"POD_NAME": f"visits-{i}", "LISTEN_ADDR": f"127.0.0.1:{port}", "PEERS": peers}
        started.append(replicas(claim, "/data", env))
    for replica, visits in zip(started, (4, 9, 6)):
        for _ in range(visits):
            replica.get("/")

    url = f"http://{started[0].address}/visits/all"
    dom = chromium(tmp_path, "--dump-dom", url)
    assert dom.count('class="bar"') == 3
    for i, visits in enumerate((4, 9, 6)):
        assert f'data-count="{visits}"' in dom and f"visits-{i}" in dom
    assert "19 visits in all" in dom

    chromium(tmp_path, f"--screenshot={CLUSTER_SCREENSHOT}", "--window-size=900,620", url)
    assert CLUSTER_SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
