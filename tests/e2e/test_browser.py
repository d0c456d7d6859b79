"""The page in a real browser: headless Chromium (Debian's) loads / from the running server
component; the rendered DOM must show the recorded Moscow time and the pod name, and the
screenshot it takes is the one the README shows (docs/page.png)."""

import shutil
import struct
import subprocess
from html.parser import HTMLParser

import pytest

from conftest import ROOT

SCREENSHOT = ROOT / "docs" / "page.png"
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
