"""No two modules import each other, directly or round a circle: in the crate (`src/`), in each
entry crate (`components/*/src`) and in the benchmark (`bench/`). A module's tests and
comments do not count; a module using its own submodules does not either."""

import re

import pytest

from conftest import ROOT


def strongly_connected(graph):
    """The cycles of `graph` (a dict of sets), as sorted lists of their members (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def rust_graph(src):
    modules = {}
    for path in src.rglob("*.rs"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] in ("mod", "lib", "main"):
            parts = parts[:-1]
        if "tests" in parts:
            continue
        modules["::".join(parts)] = path
    graph = {module: set() for module in modules}
    for module, path in modules.items():
        text = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", path.read_text(), flags=re.S)
        text = re.sub(r"//.*", "", text)
        for reference in re.findall(r"crate::(\w+(?:::\w+)*)", text):
            parts = reference.split("::")
            for end in range(len(parts), 0, -1):
                target = "::".join(parts[:end])
                if target in modules:
                    if target != module and not module.startswith(target + "::"):
                        graph[module].add(target)
                    break
    return graph


def python_graph(directory):
    modules = {path.stem: path for path in directory.glob("*.py")}
    graph = {module: set() for module in modules}
    for module, path in modules.items():
        for imported in re.findall(r"^\s*(?:from|import)\s+(\w+)", path.read_text(), re.M):
            if imported in modules and imported != module:
                graph[module].add(imported)
    return graph


SOURCES = [ROOT / "src", *sorted((ROOT / "components").glob("*/src"))]


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_cycle_in_rust(src):
    assert strongly_connected(rust_graph(src)) == []


def test_no_import_cycle_in_the_benchmark():
    assert strongly_connected(python_graph(ROOT / "bench")) == []


def test_a_cycle_is_found():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
