"""A statement read's SELECT on PostgreSQL, run by asyncpg itself.

SQLAlchemy's execution of a cached SELECT — the cache key walked over the
whole statement, the execution context, the hop into a greenlet, the
result's metadata — was the largest share of a read's API time left
(issue 19); without it a single read takes 0.80–0.83× the API CPU, a list
0.84–0.91× (``bench/reads.py --against``).  A statement read (a bare
connection in autocommit, ``kit.db.StatementReads``) on asyncpg therefore
sends its SELECT straight to the driver connection SQLAlchemy checked out:

- the SQL is SQLAlchemy's own compilation for this dialect, made once per
  statement object (the statements read this way are built once: module
  constants, ``kit.listing``'s cached shapes);
- a statement's first two reads go through SQLAlchemy (one built for a
  single read is never compiled twice), and the second's answer says what
  the driver's looks like: the column names (SQLAlchemy's keys) and the
  driver's description of the columns' types;
- parameters and results pass through the column types' own bind and
  result processors (``TypeEngine.bind_processor``/``result_processor``,
  given the driver's type as SQLAlchemy gives it), the conversions
  SQLAlchemy applies; the JSON codecs are the ones SQLAlchemy installed on
  the connection.

Everything else goes through SQLAlchemy as before: SQLite, a session's
connection (its transaction is SQLAlchemy's to begin), a statement this
path cannot send as compiled (expanding ``IN``, ``literal_execute``), and
any error: the statement is run again through SQLAlchemy — a read, harmless
to repeat — so a lost connection is recognised, invalidated and answered
(503) exactly as on every other path.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from b24mw.kit.db import Executor

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class Rows:
    """A SELECT's column names and its rows (plain tuples)."""

    names: list[str]
    rows: list[tuple[Any, ...]]

    def mappings(self) -> list[dict[str, Any]]:
        return [dict(zip(self.names, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        """The first column of the one row."""
        (row,) = self.rows
        return row[0]


@dataclass(frozen=True, slots=True)
class _Plan:
    """A statement as the driver takes it.  Holds nothing of the statement
    itself, which is the key it is kept under (weakly)."""

    sql: str
    names: list[str]
    # The SQL's $1, $2, ...: the parameter's key, the bind (for a value the
    # statement carries itself) and the type's processor.
    binds: tuple[tuple[str, BindParameter[Any], Processor], ...]
    results: tuple[Processor, ...]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        arguments = []
        for key, bind, process in self.binds:
            if key in params:
                value = params[key]
            elif bind.required:
                raise KeyError(key)  # SQLAlchemy, running it again, says which
            else:
                value = bind.effective_value
            arguments.append(value if process is None else process(value))
        return arguments

    def row(self, record: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if process is None else process(value)
            for value, process in zip(record, self.results, strict=True)
        )


# Statements read once: a statement built for one read (``kit.listing.fetch_page``)
# is never read again, and compiling it for the driver would only cost.
_SEEN: weakref.WeakSet[Select[Any]] = weakref.WeakSet()
# None: the statement goes through SQLAlchemy (see the module's docstring).
_PLANS: weakref.WeakKeyDictionary[Select[Any], _Plan | None] = weakref.WeakKeyDictionary()


def _direct(executor: Executor) -> AsyncConnection | None:
    """The connection to read through the driver, or None."""
    if not isinstance(executor, AsyncConnection):
        return None
    if executor.dialect.driver != "asyncpg":
        return None
    sync = executor.sync_connection
    if sync is None or sync.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        return None
    return executor


async def select_rows(
    executor: Executor, statement: Select[Any], params: Mapping[str, Any]
) -> Rows:
    """The rows of ``statement`` with ``params``, as SQLAlchemy would give them."""
    conn = _direct(executor)
    plan = None if conn is None else _PLANS.get(statement)
    if conn is not None and plan is not None:
        try:
            return await _driver_rows(conn, plan, params)
        except Exception:  # SQLAlchemy runs it again, and reports the error
            pass
    result = await executor.execute(statement, dict(params))
    names = list(result.keys())
    if conn is not None and statement not in _PLANS:
        if statement in _SEEN:
            # Read again: a statement made to be reused.  SQLAlchemy's
            # answer says what the driver's looks like.
            try:
                _PLANS[statement] = _plan(conn.dialect, statement, names, result.cursor.description)
            except Exception:  # not for the shortcut; SQLAlchemy reads it
                _PLANS[statement] = None
        else:
            _SEEN.add(statement)
    return Rows(names, [tuple(row) for row in result.all()])


async def _driver_rows(conn: AsyncConnection, plan: _Plan, params: Mapping[str, Any]) -> Rows:
    driver = (await conn.get_raw_connection()).driver_connection
    if driver is None:  # invalidated: SQLAlchemy, running it again, says so
        raise RuntimeError("the connection has no driver connection")
    records = await driver.fetch(plan.sql, *plan.arguments(params))
    return Rows(plan.names, [plan.row(record) for record in records])


def _plan(
    dialect: Dialect, statement: Select[Any], names: list[str], description: Sequence[Any]
) -> _Plan | None:
    """How to send ``statement`` to the driver, or None when it cannot be
    sent as compiled (its SQL depends on the parameters) or its columns are
    not the statement's.  ``names`` and ``description`` are SQLAlchemy's
    result's keys and the driver's description of its columns (DB-API:
    name, type code — for asyncpg, the type's OID — ...)."""
    compiled: Any = statement.compile(dialect=dialect)
    binds = []
    for name in compiled.positiontup or ():
        bind = compiled.binds.get(name)
        if bind is None or bind.expanding or bind.literal_execute:
            return None
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        binds.append((bind.key, bind, process))
    columns = list(statement.selected_columns)
    if [column[0] for column in description] != names or len(columns) != len(names):
        return None
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, described[1])
        for column, described in zip(columns, description, strict=True)
    )
    return _Plan(compiled.string, names, tuple(binds), results)
