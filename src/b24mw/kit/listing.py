"""The SQL behind ``kit.pagination``: a page of a list read from its index.

A repository describes a list as one or more *branches*: filtered SELECTs of
one table, disjoint, each answerable from one index in the list's sort order
(``Keyset``).  One branch is the plain case.  Several are how a filter on a
set of values (``status=NEW&status=READY``) stays a walk down an index: each
status is its own range of ``(status, created_at)``, read up to one page
each, and the pages are merged — a plain ``status IN (...)`` would have the
database fetch and sort every matching row to find the newest twenty.

The page and the bounded count travel in one statement (the count as an
uncorrelated scalar subquery, computed once); the planner's estimate, when a
total is wanted past the cap, is one ``EXPLAIN`` more, at most once a
minute for the same list and filters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import (
    ClauseElement,
    ColumnElement,
    Executable,
    FromClause,
    Select,
    Subquery,
    any_,
    bindparam,
    func,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from b24mw.kit.pagination import EXACT_COUNT_CAP, Count, Page, PageRequest

_COUNTED = "b24mw_counted"


class Explain(Executable, ClauseElement):
    """``EXPLAIN`` of a statement with its parameters bound (PostgreSQL)."""

    inherit_cache = False

    def __init__(self, statement: Any, *, as_json: bool = False) -> None:
        self.statement = statement
        self.as_json = as_json


@compiles(Explain, "postgresql")
def _explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    options = "(FORMAT JSON) " if element.as_json else ""
    return f"EXPLAIN {options}" + compiler.process(element.statement, **kw)


@dataclass(frozen=True)
class Keyset:
    """A list's sort: columns whose values together are unique, and the direction."""

    columns: tuple[ColumnElement[Any], ...]
    descending: bool

    def order(self, source: FromClause | None = None) -> list[ColumnElement[Any]]:
        if source is None:
            return self._table_order
        return [c.desc() if self.descending else c.asc() for c in self._of(source)]

    @cached_property
    def _table_order(self) -> list[ColumnElement[Any]]:
        return [c.desc() if self.descending else c.asc() for c in self.columns]

    def after(self, values: Sequence[Any]) -> ColumnElement[bool]:
        """Rows past ``values`` in the list's order (a row-value comparison
        the database reads as a range of the index)."""
        bound = [
            bindparam(None, value, type_=column.type)
            for column, value in zip(self.columns, values, strict=True)
        ]
        left, right = tuple_(*self.columns), tuple_(*bound)
        return left < right if self.descending else left > right

    def values(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row[c.key] for c in self.columns if c.key is not None)

    def _of(self, source: FromClause | None) -> list[ColumnElement[Any]]:
        if source is None:
            return list(self.columns)
        return [source.c[c.key] for c in self.columns if c.key is not None]


def in_ids(column: ColumnElement[Any], dialect: str) -> ColumnElement[bool]:
    """``column`` among the ids bound as ``ids`` (a list): on PostgreSQL one
    array parameter (``= ANY``), so the statement is the same for any number
    of ids; elsewhere an expanding ``IN``."""
    if dialect == "postgresql":
        return column == any_(bindparam("ids", type_=ARRAY(column.type)))
    return column.in_(bindparam("ids", expanding=True))


def _count_statement(
    branches: Sequence[Select[Any]], keyset: Keyset, count: Count
) -> Select[Any] | None:
    """``count(*)`` of the branches' rows; for an estimate each read in index
    order only up to the cap.  (The branches' columns cost nothing: the
    planner drops what the count does not use.)"""
    if count is Count.NONE:
        return None
    parts: list[Select[Any]] = list(branches)
    if count is Count.ESTIMATE:
        limit = EXACT_COUNT_CAP + 1
        parts = [select(p.order_by(*keyset.order()).limit(limit).subquery()) for p in parts]
    union = parts[0] if len(parts) == 1 else union_all(*parts)
    return select(func.count()).select_from(union.subquery())


def page_statement(
    branches: Sequence[Select[Any]], keyset: Keyset, request: PageRequest
) -> Select[Any]:
    """The page's rows (one more than the page, to know if another follows),
    with the count the request asks for as an extra column."""
    limit = request.page_size + 1
    offset = request.offset

    def shaped(branch: Select[Any], rows: int) -> Select[Any]:
        if request.after is not None:
            branch = branch.where(keyset.after(request.after))
        return branch.order_by(*keyset.order()).limit(rows)

    stmt: Select[Any]
    if len(branches) == 1:
        stmt = shaped(branches[0], limit).offset(offset)
    else:
        # Each branch is read in index order up to the page's end; the merge
        # sorts at most (branches × page) rows, whatever the table's size.
        parts: list[Subquery] = [shaped(b, offset + limit).subquery() for b in branches]
        merged = union_all(*(select(p) for p in parts)).subquery()
        stmt = select(merged).order_by(*keyset.order(merged)).offset(offset).limit(limit)
    counted = _count_statement(branches, keyset, request.count)
    if counted is not None:
        stmt = stmt.add_columns(counted.scalar_subquery().label(_COUNTED))
    return stmt


def count_statement(
    branches: Sequence[Select[Any]], keyset: Keyset, count: Count
) -> Select[Any] | None:
    """The count alone (a page past the end has no row to carry it)."""
    return _count_statement(branches, keyset, count)


async def fetch_page(
    session: AsyncSession,
    request: PageRequest,
    keyset: Keyset,
    branches: Sequence[Select[Any]],
) -> Page[dict[str, Any]]:
    """One page of the list the branches make up, in the keyset's order, as
    plain dicts (a ``RowMapping`` rebuilds its keys on every use)."""
    result = await session.execute(page_statement(branches, keyset, request))
    names = list(result.keys())
    rows = [dict(zip(names, row, strict=True)) for row in result.all()]
    has_next = len(rows) > request.page_size
    rows = rows[: request.page_size]
    cursor = request.key.encode(keyset.values(rows[-1])) if has_next else None
    page = Page(rows=rows, has_next=has_next, next_cursor=cursor, total=None)
    if request.count is Count.NONE:
        return page
    if request.page is not None and not has_next and (rows or request.offset == 0):
        # The page shows where the list ends: the total is exact and free.
        page.total = request.offset + len(rows)
        return page
    if rows:
        counted = int(rows[0][_COUNTED])
    else:
        stmt = count_statement(branches, keyset, request.count)
        assert stmt is not None
        counted = int((await session.execute(stmt)).scalar_one())
    if request.count is Count.EXACT or counted <= EXACT_COUNT_CAP:
        page.total = counted
    elif session.get_bind().dialect.name == "postgresql":
        estimate = await planner_estimate(session, branches)
        page.total, page.estimated = max(estimate, counted), True
    return page


# The planner's estimates, by statement and parameters: they change only
# when the table is analyzed again, so one a minute is as good as one a page.
ESTIMATE_TTL_S = 60.0
_ESTIMATES_KEPT = 4096
_estimates: dict[Any, tuple[float, int]] = {}


async def planner_estimate(session: AsyncSession, branches: Sequence[Select[Any]]) -> int:
    """PostgreSQL's estimate of how many rows the branches match (no row is
    read), remembered for ``ESTIMATE_TTL_S``."""
    union = branches[0] if len(branches) == 1 else union_all(*branches)
    cache_key = union._generate_cache_key()
    key = None
    if cache_key is not None:
        key = (cache_key.key, tuple(repr(p.effective_value) for p in cache_key.bindparams))
        known = _estimates.get(key)
        if known is not None and known[0] > time.monotonic():
            return known[1]
    plan: Any = (await session.execute(Explain(union, as_json=True))).scalar_one()
    if isinstance(plan, str):
        plan = json.loads(plan)
    estimate = int(plan[0]["Plan"]["Plan Rows"])
    if key is not None:
        if len(_estimates) >= _ESTIMATES_KEPT:
            _estimates.clear()
        _estimates[key] = (time.monotonic() + ESTIMATE_TTL_S, estimate)
    return estimate
