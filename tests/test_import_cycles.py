"""The import graph of ``src/b24mw`` has no module-level cycles.

A cycle works only as long as the modules are first imported in one order,
and it is what pushes imports into functions (run on every call).  Imports
inside functions and under ``TYPE_CHECKING`` are not edges: they run later,
or never.
"""

from __future__ import annotations

import ast
from pathlib import Path

import b24mw

ROOT = Path(b24mw.__file__).parent
# Cycles left on purpose, each exactly as found, with the reason and who
# removes it.  A new module joining one of them fails the test too.
KNOWN: dict[frozenset[str], str] = {}


def module_name(path: Path) -> str:
    parts = ("b24mw", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported (not in functions or classes'
    methods, not under ``if TYPE_CHECKING``)."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                pending.extend(node.body)
            pending.extend(node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                pending.extend(handler.body)
        elif isinstance(node, ast.With | ast.ClassDef):
            pending.extend(node.body)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in module_level_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # ``from pkg import mod`` imports the module; ``from mod import x``
                # imports the module that defines x.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                    for alias in node.names
                ]
            for target in targets:
                # Importing ``b24mw.a.b`` runs ``b24mw/a/__init__.py`` first.
                parts = target.split(".")
                for n in range(2, len(parts) + 1):
                    step = ".".join(parts[:n])
                    if step in files and step != name and not name.startswith(step + "."):
                        graph[name].add(step)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _known(component: list[str]) -> bool:
    return frozenset(component) in KNOWN


def test_no_module_level_import_cycles() -> None:
    left = [c for c in cycles(import_graph()) if not _known(c)]
    assert left == [], "module-level import cycles:\n" + "\n".join(" ↔ ".join(c) for c in left)


# Where a request runs: no import inside a function (it would run per call,
# and is how a cycle hides).
REQUEST_PATH = ("b24mw.kit", "b24mw.app", "b24mw.deps")


def test_no_function_level_imports_on_the_request_path() -> None:
    late: list[str] = []
    for path in ROOT.rglob("*.py"):
        name = module_name(path)
        if not (name.startswith(REQUEST_PATH) or name.endswith(".endpoints")):
            continue
        tree = ast.parse(path.read_text(), str(path))
        top = {id(node) for node in module_level_imports(tree)}
        late.extend(
            f"{name}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            and id(node) not in top
            and not _under_type_checking(tree, node)
        )
    assert late == []


def _under_type_checking(tree: ast.Module, target: ast.stmt) -> bool:
    return any(
        isinstance(node, ast.If) and _is_type_checking(node) and target in node.body
        for node in ast.walk(tree)
    )


def test_the_check_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_function_and_type_checking_imports_are_not_edges() -> None:
    tree = ast.parse(
        "import x\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import y\n"
        "def f():\n    import z\n"
        "try:\n    import w\nexcept ImportError:\n    pass\n"
    )
    names = sorted(
        alias.name
        for node in module_level_imports(tree)
        for alias in node.names
        if isinstance(node, ast.Import)
    )
    assert names == ["w", "x"]
