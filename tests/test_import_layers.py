"""The package has no import circles, counting imports inside functions too.

Data flows one way (data -> rollout -> rewards -> train; evaluation and the service reuse lower layers).
A circle, even one hidden in a function-level import, means two modules each need the other and can no
longer be read, tested or replaced on their own. This walks every ``import`` in ``src/zerosearch`` with
``ast`` and fails naming the modules of any strongly connected group.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in (SRC / "zerosearch").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _targets(node: ast.AST, modules: dict[str, Path]) -> list[str]:
    """Modules one import statement loads; ``from pkg import sub`` counts as ``pkg.sub`` when sub is a module."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in modules]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        subs = [f"{node.module}.{alias.name}" for alias in node.names]
        found = [s for s in subs if s in modules]
        if len(found) < len(subs) and node.module in modules:
            found.append(node.module)
        return found
    return []


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its body."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            graph[name].update(t for t in _targets(node, modules) if t != name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (networkx ships with torch)."""
    import networkx as nx

    digraph = nx.DiGraph()
    digraph.add_nodes_from(graph)
    digraph.add_edges_from((a, b) for a, targets in graph.items() for b in targets)
    return sorted(sorted(group) for group in nx.strongly_connected_components(digraph) if len(group) > 1)


def test_circle_finder_sees_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_circles():
    graph = import_graph()
    assert graph.get("zerosearch.data.loaders"), "the walk found no imports"
    assert circles(graph) == [], "import circles (each group imports itself through the others)"
