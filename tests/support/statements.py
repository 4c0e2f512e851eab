"""The SQL a piece of code sends: for tests that a path costs the
statements it should, no more."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from b24mw.kit.db import Database


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every statement sent to the database meanwhile (any session, any engine
    of ``db``)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engines = {db.engine.sync_engine, db.read_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
