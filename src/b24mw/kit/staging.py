"""StagedWrite rows: what a unit of work only appends, written with it in bulk.

Rows a unit of work only appends (history, exchange log, outbox jobs) are
*staged* instead of added as ORM objects: ``stage()`` queues a plain row and
the queue is written before the commit, before any query through the session
(so reads see their own rows) and on ``flush()``.  The ORM's per-object
bookkeeping cost more CPU than the rest of a write request.  On PostgreSQL the
whole queue is one statement (one data-modifying CTE per table); elsewhere it
is one multi-row INSERT per consecutive run of one table.  A rollback drops
the queue with the transaction.  Savepoints go through ``savepoint()``, which
writes the queue first, so a rolled-back savepoint drops only its own rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any

from sqlalchemy import Insert, Table, TextClause, Update, bindparam, event, insert, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, SessionTransaction
from sqlalchemy.orm import Session as SyncSession

STAGED = "b24mw.staged"


@dataclass(eq=False, slots=True)
class StagedRow:
    """A row queued for INSERT; ``id`` is the generated key once written."""

    table: Table
    values: dict[str, Any]
    id: Any = field(default=None)


@dataclass(eq=False, slots=True)
class StagedUpdate:
    """An UPDATE of the rows matching ``where`` (column equalities) queued with
    the inserts; ``matched`` is how many rows it changed once written."""

    table: Table
    where: dict[str, Any]
    values: dict[str, Any]
    # Raised when the UPDATE is written and changes no row (e.g. a lost
    # optimistic-lock race), wherever that happens: a flush or the commit.
    otherwise: Exception | None = None
    matched: int | None = field(default=None)

    def settle(self, matched: int) -> None:
        self.matched = matched
        if matched == 0 and self.otherwise is not None:
            raise self.otherwise


class StagingError(RuntimeError):
    """A savepoint was opened over staged rows without ``savepoint()``."""


def stage(session: AsyncSession | SyncSession, table: Table, values: dict[str, Any]) -> StagedRow:
    """Queue ``values`` for INSERT into ``table`` in the session's unit of work."""
    row = StagedRow(table, values)
    session.info.setdefault(STAGED, []).append(row)
    return row


def stage_update(
    session: AsyncSession | SyncSession,
    table: Table,
    where: dict[str, Any],
    values: dict[str, Any],
    *,
    otherwise: Exception | None = None,
) -> StagedUpdate:
    """Queue an UPDATE of the rows matching ``where``; on PostgreSQL it travels
    in the same statement as the staged inserts.  ``otherwise`` is raised if
    it matches no row (a version-checked change that lost a race)."""
    update = StagedUpdate(table, where, values, otherwise)
    session.info.setdefault(STAGED, []).append(update)
    return update


@cache
def _insert_for(table: Table, columns: tuple[str, ...]) -> tuple[Insert, bool]:
    """The INSERT for rows with ``columns``, and whether it returns generated ids."""
    key = table.autoincrement_column
    if key is None or key.name in columns:
        return insert(table), False
    # The generated ids come back in the order the rows were given.
    return insert(table).returning(key, sort_by_parameter_order=True), True


@cache
def _update_for(table: Table, where: tuple[str, ...], columns: tuple[str, ...]) -> Update:
    return (
        update(table)
        .where(*(table.c[name] == bindparam(f"w_{name}") for name in where))
        .values({name: bindparam(f"s_{name}") for name in columns})
    )


# (table, INSERT columns) for a run of rows; (table, WHERE columns, SET
# columns) for one update.
StatementShape = tuple[Table, tuple[str, ...]] | tuple[Table, tuple[str, ...], tuple[str, ...]]
StagedWrite = StagedRow | StagedUpdate


def _by_statement(queue: list[StagedWrite]) -> list[tuple[StatementShape, list[StagedWrite]]]:
    runs: list[tuple[StatementShape, list[StagedWrite]]] = []
    for item in queue:
        if isinstance(item, StagedUpdate):
            runs.append(((item.table, tuple(item.where), tuple(item.values)), [item]))
            continue
        key: StatementShape = (item.table, tuple(item.values))
        if runs and runs[-1][0] == key:
            runs[-1][1].append(item)
        else:
            runs.append((key, [item]))
    return runs


def write_staged(session: SyncSession) -> None:
    """Write the queue, runs of one table (and one column set) in order."""
    queue: list[StagedWrite] | None = session.info.pop(STAGED, None)
    if not queue:
        return
    conn = session.connection()
    runs = _by_statement(queue)
    if conn.dialect.name == "postgresql" and len(runs) > 1:
        _write_in_one_statement(conn, runs)
        return
    for run, batch in runs:
        if len(run) == 3:
            (change,) = batch
            assert isinstance(change, StagedUpdate)
            params = {f"w_{k}": v for k, v in change.where.items()}
            params.update({f"s_{k}": v for k, v in change.values.items()})
            result: Any = conn.execute(_update_for(*run), params)
            change.settle(int(result.rowcount))
            continue
        stmt, returns_ids = _insert_for(*run)
        result = conn.execute(stmt, [r.values for r in batch])
        if returns_ids:
            _assign_ids(batch, [new_id for (new_id,) in result.all()])


def _write_in_one_statement(
    conn: Any, runs: list[tuple[StatementShape, list[StagedWrite]]]
) -> None:
    """PostgreSQL: every run as one data-modifying CTE of a single statement,
    its rows passed as JSON (foreign keys are checked at the end of the
    statement, so the order of the CTEs does not matter)."""
    stmt = _combined_statement(tuple(key for key, _ in runs))
    params: dict[str, str] = {}
    for n, (run, batch) in enumerate(runs):
        table = run[0]
        if len(run) == 3:
            (change,) = batch
            assert isinstance(change, StagedUpdate)
            params[f"where_{n}"] = json.dumps(change.where, default=_json)
            params[f"set_{n}"] = json.dumps(change.values, default=_json)
        else:
            params[f"rows_{n}"] = json_rows(table, [r.values for r in batch])
    generated: dict[int, list[Any]] = {}
    for run_no, value in conn.execute(stmt, params):
        generated.setdefault(run_no, []).append(value)
    for n, (run, batch) in enumerate(runs):
        if len(run) == 3:
            (change,) = batch
            assert isinstance(change, StagedUpdate)
            change.settle(int(generated[n][0]))
            continue
        # One INSERT takes ids from its sequence in row order, so the sorted
        # ids belong to the rows in the order they were staged.
        ids = sorted(generated.get(n, ()))
        if ids:
            _assign_ids(batch, ids)


def _assign_ids(batch: list[StagedWrite], ids: list[Any]) -> None:
    for row, new_id in zip(batch, ids, strict=True):
        assert isinstance(row, StagedRow)
        row.id = new_id


@cache
def _combined_statement(runs: tuple[StatementShape, ...]) -> TextClause:
    ctes, selects = [], []
    for n, run in enumerate(runs):
        table = run[0]
        if len(run) == 3:
            _, where, columns = run
            sets = ", ".join(f'"{c}" = s."{c}"' for c in columns)
            conds = " AND ".join(f'"{table.name}"."{c}" = w."{c}"' for c in where)
            ctes.append(
                f'run_{n} AS (UPDATE "{table.name}" SET {sets}'
                f' FROM json_populate_record(NULL::"{table.name}", CAST(:set_{n} AS json)) AS s,'
                f' json_populate_record(NULL::"{table.name}", CAST(:where_{n} AS json)) AS w'
                f" WHERE {conds} RETURNING 1)"
            )
            selects.append(f"SELECT {n} AS run_no, count(*) AS value FROM run_{n}")
            continue
        names = ", ".join(f'"{name}"' for name in _defaulted_columns(table, run[1]))
        key = table.autoincrement_column
        returning = f' RETURNING "{key.name}"' if key is not None else ""
        # WITH ORDINALITY ... ORDER BY: rows are inserted in the order given.
        ctes.append(
            f'run_{n} AS (INSERT INTO "{table.name}" ({names}) SELECT {names}'
            f' FROM json_populate_recordset(NULL::"{table.name}", CAST(:rows_{n} AS json))'
            f" WITH ORDINALITY AS staged ORDER BY staged.ordinality{returning})"
        )
        if key is not None:
            selects.append(f'SELECT {n} AS run_no, "{key.name}"::bigint AS value FROM run_{n}')
    if not selects:
        selects.append("SELECT NULL::int AS run_no, NULL::bigint AS value WHERE false")
    return text("WITH " + ", ".join(ctes) + " " + " UNION ALL ".join(selects))


@cache
def _defaulted_columns(table: Table, columns: tuple[str, ...]) -> tuple[str, ...]:
    """The given columns plus those with a Python-side default (which the
    ORM or Core would have filled in); the rest take the database's."""
    return columns + tuple(name for name, _ in _defaults(table) if name not in columns)


@cache
def _defaults(table: Table) -> tuple[tuple[str, Any], ...]:
    """(column, default) for the columns with a Python-side default: a scalar,
    or a callable of the execution context."""
    return tuple(
        (c.name, getattr(c.default, "arg", None))
        for c in table.c
        if c.default is not None and c.autoincrement is not True
    )


def json_rows(table: Table, rows: list[dict[str, Any]]) -> str:
    """Rows as the JSON array ``json_populate_recordset`` reads (PostgreSQL),
    with the columns' Python-side defaults filled in."""
    return json.dumps([_completed(table, values) for values in rows], default=_json)


def json_row(table: Table, values: dict[str, Any]) -> str:
    """One row as ``json_populate_record`` reads it."""
    return json.dumps(_completed(table, values), default=_json)


def _completed(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    missing = [(name, arg) for name, arg in _defaults(table) if name not in values]
    if not missing:
        return values
    out = dict(values)
    for name, arg in missing:
        out[name] = arg(None) if callable(arg) else arg
    return out


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return "\\x" + value.hex()  # bytea's hex input format
    raise TypeError(f"cannot stage a {type(value).__name__}")


class UnitSession(SyncSession):
    """The session class of every unit of work; its events keep the staged
    rows in step with the transaction."""


def settle(session: SyncSession) -> None:
    """Write what the unit of work holds (ORM changes, then staged rows), so
    a query sees it; what autoflush does before ``Session.execute``, for a
    statement sent on the session's connection (``kit.db.core_connection``)."""
    if not session._flushing:
        session.flush()
        write_staged(session)


@event.listens_for(UnitSession, "do_orm_execute")
def _staged_before_query(state: ORMExecuteState) -> None:
    # Like autoflush: a query in the unit of work sees the rows it staged.
    if state.session.info.get(STAGED):
        settle(state.session)


@event.listens_for(UnitSession, "before_commit")
def _staged_before_commit(session: SyncSession) -> None:
    # Also for a savepoint's release; ORM objects first, staged rows may refer to them.
    session.flush()
    write_staged(session)


@event.listens_for(UnitSession, "after_soft_rollback")
def _staged_dropped(session: SyncSession, previous: SessionTransaction) -> None:
    session.info.pop(STAGED, None)


@event.listens_for(UnitSession, "after_transaction_create")
def _savepoint_guard(session: SyncSession, transaction: SessionTransaction) -> None:
    if transaction.nested and session.info.get(STAGED):
        raise StagingError("open savepoints with kit.db.savepoint(), not begin_nested()")


async def flush(session: AsyncSession) -> None:
    """Write everything pending now (ORM changes, then staged rows), so the
    database's refusals surface here, where the caller can map them."""
    await session.flush()
    if session.info.get(STAGED):
        await session.run_sync(write_staged)


@asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """``begin_nested()`` for units of work that stage rows: rows staged
    before it are written first, so rolling it back drops only its own."""
    await flush(session)
    async with session.begin_nested():
        yield
