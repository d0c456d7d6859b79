"""Spin's own HTTP runtime for the tests: docs/spin.md's `spin up` command, run on a temporary
copy of the app so the checkout's data/ is never written.

The runner is, in order: the program named by SPIN_UP_LITE (an explicit choice wins), a `spin`
CLI on PATH, `spin-up-lite` on PATH (`.ci/run` puts ../shared/bin there), or
../shared/bin/spin-up-lite beside the clone. spin-up-lite is Spin 3.6.3's loader and HTTP
trigger (see ../shared/bin/README.md); it always maps `files` directly, which is what
`--direct-mounts` asks `spin up` for, and takes every other flag as `spin up` does.
"""

import http.client
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import tomllib

import pytest

from conftest import ROOT

SPIN_DOC = ROOT / "docs" / "spin.md"
SPIN_TOML = ROOT / "spin.toml"
# What spin.toml says for a local run on `spin up`'s default address; a copy swaps in its port.
DEFAULT_ADDR = "127.0.0.1:3000"


def readme_spin_block():
    """The command lines of docs/spin.md's "With Spin" block, comments dropped."""
    section = SPIN_DOC.read_text().split("## With Spin", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "docs/spin.md's With Spin section has no sh block"
    return [line.split(" #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def readme_line(prefix):
    lines = [line for line in readme_spin_block() if line.startswith(prefix)]
    assert len(lines) == 1, f"expected one `{prefix}` line in docs/spin.md's With Spin block: {lines}"
    return lines[0]


def readme_spin_up_flags():
    """The flags of docs/spin.md's `spin up` line, word for word."""
    words = shlex.split(readme_line("spin up"))
    return words[2:]


def find_runner():
    named = os.environ.get("SPIN_UP_LITE")
    if named:
        return "spin-up-lite", named
    if shutil.which("spin"):
        return "spin", shutil.which("spin")
    beside = ROOT.parent / "shared" / "bin" / "spin-up-lite"
    lite = shutil.which("spin-up-lite") or (str(beside) if beside.exists() else None)
    if lite:
        return "spin-up-lite", lite
    pytest.skip("no Spin runtime: install the Spin CLI (`spin` on PATH), or put spin-up-lite "
                "on PATH (.ci/run adds ../shared/bin) or name it in SPIN_UP_LITE")


def make_app(directory, port, peers=None, allowed=None):
    """A copy of the app in `directory`: the repo's spin.toml with its own port (and, when
    given, its own PEERS and allowed_outbound_hosts), the built component where spin.toml
    names it, and an empty data/."""
    text = SPIN_TOML.read_text()
    manifest = tomllib.loads(text)
    component = manifest["component"]["visits"]
    # Each swap must find what it replaces, so a changed spin.toml fails here, loudly.
    swaps = {f'PEERS = "{DEFAULT_ADDR}"': f'PEERS = "{peers or f"127.0.0.1:{port}"}"',
             f'allowed_outbound_hosts = ["http://{DEFAULT_ADDR}"]':
                 "allowed_outbound_hosts = [" + ", ".join(
                     f'"http://{host}"' for host in (allowed or [f"127.0.0.1:{port}"])) + "]"}
    for old, new in swaps.items():
        assert text.count(old) == 1, f"spin.toml no longer says {old}"
        text = text.replace(old, new)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "spin.toml").write_text(text)
    wasm = directory / component["source"]
    wasm.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / component["source"], wasm)
    # docs/spin.md promises ./data; spin.toml must mount exactly that.
    (directory / "data").mkdir(exist_ok=True)
    return directory


class SpinUp:
    """One `spin up` (or spin-up-lite) process serving an app copy, from its directory."""

    def __init__(self, app_dir, port, flags):
        kind, program = find_runner()
        if kind == "spin":
            argv = [program, "up", *flags]
        else:
            assert "--direct-mounts" in flags, (
                "spin-up-lite always mounts files directly; `spin up` does so only with "
                "--direct-mounts, so the documented command needs it")
            argv = [program, "./spin.toml", *[f for f in flags if f != "--direct-mounts"]]
        self.addr = f"127.0.0.1:{port}"
        self.argv = argv + ["--listen", self.addr]
        self.log = app_dir / "runtime.log"
        scratch = app_dir.parent / f"{app_dir.name}-tmp"
        scratch.mkdir(exist_ok=True)
        with open(self.log, "ab") as log:
            # From the app's directory: Spin 3.6.3 resolves direct mounts against the cwd.
            # Its own session, so a `spin up` and the trigger it spawns stop together.
            self.process = subprocess.Popen(self.argv, cwd=app_dir, stdout=log, stderr=log,
                                            env={**os.environ, "TMPDIR": str(scratch)},
                                            start_new_session=True)
        self._wait_ready()

    def _wait_ready(self, seconds=120):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{shlex.join(self.argv)} exited: {self.output()}")
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"{shlex.join(self.argv)} never answered: {self.output()}")

    def output(self):
        return self.log.read_text(errors="replace")[-3000:]

    def request(self, method, path, headers=None, body=None):
        """(status, headers with lower-case names, body text) over a fresh connection."""
        connection = http.client.HTTPConnection(self.addr, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return (response.status, {k.lower(): v for k, v in response.getheaders()},
                    response.read().decode())
        finally:
            connection.close()

    def get(self, path, headers=None):
        return self.request("GET", path, headers)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def spin_up():
    """start(app_dir, port, flags) -> SpinUp; every process started is stopped at the end.
    Skips the test, with the reason, before it does anything when there is no Spin runtime."""
    find_runner()
    started = []

    def start(app_dir, port, flags=None):
        runtime = SpinUp(app_dir, port, readme_spin_up_flags() if flags is None else flags)
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        runtime.stop()
