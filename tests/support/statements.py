"""The SQL a piece of code sends: for tests that a path costs the
statements it should, no more."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from b24mw.kit import direct_reads
from b24mw.kit.db import Database


@contextmanager
def sqlalchemy_statements(db: Database) -> Iterator[list[str]]:
    """Every statement SQLAlchemy sends meanwhile (any session, any engine of
    ``db``)."""
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


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every statement sent to the database meanwhile: SQLAlchemy's, and the
    statement reads asyncpg sends itself (``kit.direct_reads``)."""
    original = direct_reads._driver_rows
    with sqlalchemy_statements(db) as seen:

        async def record(conn: Any, plan: Any, params: Any) -> Any:
            seen.append(plan.sql)
            return await original(conn, plan, params)

        direct_reads._driver_rows = record
        try:
            yield seen
        finally:
            direct_reads._driver_rows = original
