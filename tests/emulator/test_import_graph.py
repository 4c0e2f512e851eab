"""The emulator's modules import each other without a cycle.

Before the sub-packages, modules imported their siblings through
`b24mw.emulator/__init__.py` (which re-exported the app), so importing any one
of them loaded the whole portal and every module was in one cycle. Only
imports run at module level count: those under `if TYPE_CHECKING:` and inside
functions do not run at import time.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import b24mw.emulator

PACKAGE = Path(b24mw.emulator.__file__).parent
PREFIX = "b24mw.emulator"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PREFIX, *parts))


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for inner in ast.walk(node) if isinstance(node, ast.If | ast.Try) else [node]:
            if isinstance(inner, ast.Import | ast.ImportFrom):
                found.append(inner)
    return found


def imported(node: ast.Import | ast.ImportFrom, modules: set[str]) -> set[str]:
    """Every emulator module an import statement runs, parent packages included."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        assert node.level == 0, "the emulator uses absolute imports"
        base = node.module or ""
        # `from pkg import mod` runs pkg.mod; `from mod import name` runs mod
        targets = [f"{base}.{a.name}" for a in node.names]
        targets = [t if t in modules else base for t in targets]
    run: set[str] = set()
    for target in targets:
        parts = target.split(".")
        run.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return run & modules


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges: set[str] = set()
        for node in module_level_imports(tree):
            edges |= imported(node, modules)
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for nxt in sorted(graph[node]):
            if cycle := visit(nxt):
                return cycle
        path.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        if cycle := visit(node):
            return cycle
    return None


def test_the_emulator_has_no_module_level_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 40, sorted(graph)  # the walk found the modules
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_package_inits_import_nothing_from_the_emulator() -> None:
    # An __init__ that imports a sub-module makes every sibling import load it.
    graph = import_graph()
    for name, edges in graph.items():
        path = PACKAGE.joinpath(*name.split(".")[2:], "__init__.py")
        if os.path.exists(path):
            assert edges == set(), f"{name}/__init__.py imports {sorted(edges)}"
