"""The package's folders import one way: no cycle between top-level units (a folder or a module).

Every ``import alignrec.x...`` and ``from alignrec.x... import`` counts, at module level or inside a
function (a lazy import is still a dependency). ``python -m tests.test_imports`` prints the graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

import alignrec

PACKAGE = Path(alignrec.__file__).resolve().parent


def unit(module: str) -> str:
    """``alignrec.llm.build`` -> ``llm``; ``alignrec.config`` -> ``config``; ``alignrec`` -> ``alignrec``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "alignrec":  # from alignrec import x: a dependency when x is a module
                found.update(f"alignrec.{alias.name}" for alias in node.names
                             if (PACKAGE / alias.name).is_dir() or (PACKAGE / f"{alias.name}.py").is_file())
            elif node.module.startswith("alignrec."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("alignrec"))
    return found


def import_graph() -> dict[str, set[str]]:
    """Top-level unit -> the other top-level units it imports."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        source = unit(".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts))
        edges = graph.setdefault(source, set())
        edges.update(unit(m) for m in imported_modules(path) if unit(m) not in (source, "alignrec"))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one unit (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_and_only_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_imports_between_top_level_units_have_no_cycle() -> None:
    graph = import_graph()
    assert {"cli", "pipeline", "config", "data", "llm", "tokenize", "serve"} <= set(graph)
    assert cycles(graph) == [], {k: sorted(v) for k, v in graph.items()}


if __name__ == "__main__":
    for name, targets in sorted(import_graph().items()):
        print(f"{name:>10} -> {', '.join(sorted(targets))}")
    print("cycles:", cycles(import_graph()) or "none")
