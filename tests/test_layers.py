"""The layers, read from the source: flows -> tasks -> schemas -> rnnbench, each importing itself and below, no cycles.

The graph counts every `import` and `from ... import` anywhere in a file (inside functions and `if` blocks too,
since a deferred import is still a dependency), with relative imports resolved and `from pkg import name` read as
an import of the submodule `pkg.name` where there is one, else of `pkg` (as grimp and import-linter read them).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# top first: a module may import its own layer and the layers below it, never one above
LAYERS = ("flows", "tasks", "schemas", "rnnbench")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str  # file:line of the import statement

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} ({self.where})"


def module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under each package directory."""
    out = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _resolve(name: str, known: set[str]) -> str | None:
    """The project module `name` refers to: itself, else its longest known prefix; None outside the project."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def imports_of(module: str, path: Path, known: set[str], root: Path) -> list[Edge]:
    """Every project module that `module` imports, one edge per imported name, wherever the statement is."""
    is_package = path.name == "__init__.py"
    edges = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[:len(package) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                names.append(sub if alias.name != "*" and sub in known else base)
        for name in names:
            target = _resolve(name, known)
            if target is not None and target != module:
                edges.append(Edge(module, target, where))
    return edges


def import_graph(root: Path, packages: tuple[str, ...]) -> list[Edge]:
    files = module_files(root, packages)
    known = set(files)
    return [edge for module, path in files.items() for edge in imports_of(module, path, known, root)]


def layer_of(module: str, layers: tuple[str, ...]) -> int | None:
    top = module.split(".")[0]
    return layers.index(top) if top in layers else None


def layer_violations(edges: list[Edge], layers: tuple[str, ...]) -> list[str]:
    """Edges from a layer to one above it, or out of the layers into other project code (tests, benchmarks)."""
    out = []
    for edge in edges:
        source, target = layer_of(edge.source, layers), layer_of(edge.target, layers)
        if source is None:
            continue
        if target is None:
            out.append(f"{edge}: {layers[source]} imports {edge.target.split('.')[0]}, which is not a layer")
        elif target < source:
            out.append(f"{edge}: {layers[source]} is below {layers[target]} and must not import it")
    return out


@dataclass(frozen=True)
class Cycle:
    edges: list[Edge]  # the shortest cycle through the group's first module
    group: list[str]  # every module of its strongly connected component: each reaches every other

    def __str__(self) -> str:
        text = " -> ".join([self.edges[0].source, *(f"{e.target} ({e.where})" for e in self.edges)])
        rest = sorted(set(self.group) - {e.source for e in self.edges})
        return f"import cycle: {text}" + (f"; also on cycles with these: {', '.join(rest)}" if rest else "")


def cycles(edges: list[Edge]) -> list[Cycle]:
    """One cycle for each strongly connected component of more than one module (Tarjan)."""
    graph: dict[str, dict[str, Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, {}).setdefault(edge.target, edge)
        graph.setdefault(edge.target, {})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [Cycle(_cycle_through(min(c), c, graph), sorted(c)) for c in sorted(components, key=min)]


def _cycle_through(start: str, component: set[str], graph: dict[str, dict[str, Edge]]) -> list[Edge]:
    """The shortest path from `start` back to itself within its component (breadth first)."""
    previous: dict[str, Edge] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt, edge in sorted(graph[node].items()):
                if nxt not in component or nxt in previous:
                    continue
                previous[nxt] = edge
                if nxt == start:
                    path = [edge]
                    while path[0].source != start:
                        path.insert(0, previous[path[0].source])
                    return path
                following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle through {start} in its component {sorted(component)}")


# ---- the project ----------------------------------------------------------------------------------------------
def test_each_layer_imports_only_itself_and_the_layers_below():
    edges = import_graph(ROOT, (*LAYERS, "tests", "benchmarks"))
    assert {layer_of(e.source, LAYERS) for e in edges} >= set(range(len(LAYERS))), "a layer has no imports at all?"
    bad = layer_violations(edges, LAYERS)
    assert not bad, "imports against the layers (flows -> tasks -> schemas -> rnnbench):\n" + "\n".join(bad)


def test_no_import_cycles():
    found = cycles(import_graph(ROOT, LAYERS))
    assert not found, "\n".join(str(c) for c in found)


# ---- the graph itself, on a tree made for it ------------------------------------------------------------------
@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    files = {
        "low/__init__.py": "from low import core\n",
        "low/core.py": "import os\n\ndef f():\n    from ..high import api  # deferred, still an edge\n",
        "low/sub/__init__.py": "from . import leaf\nfrom .. import core\n",
        "low/sub/leaf.py": "import low.sub\n",
        "low/sub/more.py": "from low.sub import leaf\n",
        "high/__init__.py": "",
        "high/api.py": "if True:\n    from low.core import *\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_graph_resolves_relative_submodule_and_deferred_imports(tree):
    edges = {(e.source, e.target) for e in import_graph(tree, ("high", "low"))}
    assert edges == {("low", "low.core"), ("low.core", "high.api"), ("low.sub", "low.sub.leaf"),
                     ("low.sub", "low.core"), ("low.sub.leaf", "low.sub"), ("low.sub.more", "low.sub.leaf"),
                     ("high.api", "low.core")}


def test_a_back_import_and_a_cycle_are_named_with_their_lines(tree):
    edges = import_graph(tree, ("high", "low"))
    assert layer_violations(edges, ("high", "low")) == [
        "low.core -> high.api (low/core.py:4): low is below high and must not import it"]
    assert [str(c) for c in cycles(edges)] == [
        "import cycle: high.api -> low.core (high/api.py:2) -> high.api (low/core.py:4)",
        "import cycle: low.sub -> low.sub.leaf (low/sub/__init__.py:1) -> low.sub (low/sub/leaf.py:1)"]
