"""The Bitrix24 client is a layer below the outbox: it must not import it
(its metrics live with it, exchanges are counted by whoever it is given)."""

from __future__ import annotations

import ast
from pathlib import Path

import b24mw.bitrix24

PACKAGE = Path(b24mw.bitrix24.__file__).parent


def imported_modules(source: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_bitrix24_package_does_not_import_the_outbox() -> None:
    offending = {
        f"{path.name}: {name}"
        for path in sorted(PACKAGE.glob("*.py"))
        for name in imported_modules(path)
        if name == "b24mw.outbox" or name.startswith("b24mw.outbox.")
    }
    assert not offending, sorted(offending)
