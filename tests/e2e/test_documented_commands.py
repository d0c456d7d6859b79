"""docs/configuration.md's two commands, word for word, with one `--env` added before the
component as that page tells a user to: the added value wins over the one already there."""

import re
import shlex
import subprocess

import pytest

from conftest import ROOT, free_port, tool, wait_until

DOC = ROOT / "docs" / "configuration.md"


def documented_commands():
    block = re.search(r"```sh\n(.*?)```", DOC.read_text(), re.S).group(1)
    lines = block.replace("\\\n", " ").splitlines()
    return [shlex.split(line.split(" #")[0]) for line in lines if line.strip()]


def answers(url):
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.headers.get("x-served-by")
    except OSError:
        return None


@pytest.mark.parametrize("verb", ["serve", "run"])
def test_a_documented_command_takes_an_added_env(verb, tmp_path):
    (command,) = [words for words in documented_commands() if words[:2] == ["wasmtime", verb]]
    port = free_port()
    wasm = command.pop()
    added = ["--env", "POD_NAME=overridden"]
    if verb == "run":
        added += ["--env", f"LISTEN_ADDR=127.0.0.1:{port}", "--env", "ADMIN_ADDR=127.0.0.1:0"]
    else:
        command[command.index("--addr") + 1] = f"127.0.0.1:{port}"
    command = [tool("wasmtime", "WASMTIME"), *command[1:], *added, str(ROOT / wasm)]
    (tmp_path / "data").mkdir()
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        assert wait_until(lambda: answers(url), seconds=30), "the added LISTEN_ADDR was not used"
        assert answers(url) == (200, "overridden")
    finally:
        process.kill()
        process.wait()
