"""Imports run one way (routes -> services -> models; jobs above the services they run): no cycles."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from .helpers import ROOT

PACKAGE = ROOT / "ppt_web"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, counting every import statement (in functions too).
    A module importing its own parent package does not count: Python runs the parent first anyway."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                parent = base[: len(base) - node.level + 1] if node.level else []
                mod = ".".join(parent + ([node.module] if node.module else []))
                targets = [mod] + [f"{mod}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                own_parent = name.startswith(target + ".") and modules.get(target, Path()).name == "__init__.py"
                if target in modules and target != name and not own_parent:
                    edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle():
    """A cycle is what forced imports into functions; each new one would creep back the same way."""
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    """The check above can fail: two modules importing each other are reported."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_services_never_import_routes_or_jobs():
    """Services sit below the routes and the jobs that call them."""
    edges = import_graph()

    def above(module: str) -> bool:  # the route modules, the jobs, and what assembles the app
        return module.rsplit(".", 1)[-1].endswith("routes") or module in (
            "ppt_web", "ppt_web.app", "ppt_web.cli", "ppt_web.jobs", "ppt_web.launcher")

    wrong = {m: sorted(t for t in targets if above(t)) for m, targets in edges.items() if not above(m)}
    assert {m: t for m, t in wrong.items() if t} == {}
