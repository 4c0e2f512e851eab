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

Every value of a page statement is a named parameter (``page_limit``,
``after_0``…), so a ``Listing`` whose branches take their own values as
parameters too builds each *shape* of its statement (cursor or not, which
total) once, and a request only binds values: building and keying a
statement cost a read about as much as running it.  A listing may also
carry its *head*, the one row the list belongs to (an order, for its
history): the head and the page come in one statement, and no head means
no such row.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from sqlalchemy import (
    JSON,
    BindParameter,
    ClauseElement,
    ColumnElement,
    CompoundSelect,
    Executable,
    FromClause,
    Integer,
    Numeric,
    ScalarSelect,
    Select,
    String,
    Subquery,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    func,
    literal,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import Pool
from sqlalchemy.sql.compiler import SQLCompiler

from b24mw.kit.db import Executor, core_connection
from b24mw.kit.direct_reads import select_rows
from b24mw.kit.pagination import (
    COUNT_SKIPPED_ABOVE,
    EXACT_COUNT_CAP,
    Count,
    Page,
    PageRequest,
)

_COUNTED = "b24mw_counted"
_CHILDREN = "b24mw_children"


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


PAGE_LIMIT, PAGE_OFFSET, PAGE_END = "page_limit", "page_offset", "page_end"
_HEAD = "head__"


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

    @cached_property
    def after(self) -> ColumnElement[bool]:
        """Rows past the key bound as ``after_0``, ``after_1``… in the list's
        order (a row-value comparison the database reads as a range of the
        index)."""
        bound = [
            bindparam(f"after_{n}", type_=column.type) for n, column in enumerate(self.columns)
        ]
        left, right = tuple_(*self.columns), tuple_(*bound)
        return left < right if self.descending else left > right

    def after_values(self, values: Sequence[Any]) -> dict[str, Any]:
        return {f"after_{n}": value for n, value in enumerate(values)}

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


def param(column: ColumnElement[Any], name: str | None = None) -> BindParameter[Any]:
    """A named parameter of a prepared listing, typed like ``column`` (its
    value goes through the column's type, as a literal would)."""
    return bindparam(name or column.key, type_=column.type)


def given(**values: Any) -> tuple[frozenset[str], dict[str, Any]]:
    """The filters given (not None): their names, which pick the prepared
    statement, and their values, which are its parameters."""
    found = {name: value for name, value in values.items() if value is not None}
    return frozenset(found), found


def one_branch_each(
    stmt: Select[Any], column: ColumnElement[Any], count: int, name: str
) -> list[Select[Any]]:
    """One branch per value of ``column`` asked for (``count`` of them,
    bound as ``{name}_0``, ``{name}_1``…); ``stmt`` itself for none."""
    if not count:
        return [stmt]
    return [stmt.where(column == param(column, f"{name}_{n}")) for n in range(count)]


def each_value(name: str, values: Sequence[Any]) -> dict[str, Any]:
    """The values of ``one_branch_each``'s parameters, each once."""
    return {f"{name}_{n}": value for n, value in enumerate(dict.fromkeys(values))}


@dataclass(frozen=True, slots=True)
class Shape:
    """What sets one page statement's text apart from another's of the same
    list: whether it starts after a cursor, and which total it carries."""

    cursor: bool
    count: Count

    @classmethod
    def of(cls, request: PageRequest) -> Shape:
        return cls(request.after is not None, request.count)


def page_values(keyset: Keyset, request: PageRequest) -> dict[str, Any]:
    """The page's own parameters: how many rows, from where."""
    limit = request.page_size + 1
    values = {PAGE_LIMIT: limit, PAGE_OFFSET: request.offset, PAGE_END: request.offset + limit}
    if request.after is not None:
        values.update(keyset.after_values(request.after))
    return values


def _count_statement(
    branches: Sequence[Select[Any]], keyset: Keyset, count: Count
) -> Select[Any] | None:
    """``count(*)`` of the branches' rows; for an estimate each read only up
    to the cap, along its index.  (The branches' columns cost nothing: the
    planner drops what the count does not use.)  Along the sort's first
    column only: the tie-breaking id is not in every branch's index, and
    with it the walk reads the table — then a planner that expects few
    rows sorts them all instead (119 ms for a courier with 10,000 pending
    returns the planner put at 990, against 0.3 ms from the index alone).
    In no order at all, the planner may scan the table for the first
    thousand matches, and find them last."""
    if count is Count.NONE:
        return None
    parts: list[Select[Any]] = list(branches)
    if count is Count.ESTIMATE:
        limit, first = EXACT_COUNT_CAP + 1, keyset.order()[0]
        parts = [select(p.order_by(first).limit(limit).subquery()) for p in parts]
    union = parts[0] if len(parts) == 1 else union_all(*parts)
    return select(func.count()).select_from(union.subquery())


def _count_of(name: str) -> BindParameter[int]:
    """A row count parameter (LIMIT, OFFSET)."""
    return bindparam(name, type_=Integer)


def page_statement(branches: Sequence[Select[Any]], keyset: Keyset, shape: Shape) -> Select[Any]:
    """The page's rows (one more than the page, to know if another follows),
    with the count the shape asks for as an extra column; its values are
    the parameters of ``page_values`` (and whatever the branches bind)."""

    def shaped(branch: Select[Any], rows: str) -> Select[Any]:
        if shape.cursor:
            branch = branch.where(keyset.after)
        return branch.order_by(*keyset.order()).limit(_count_of(rows))

    stmt: Select[Any]
    if len(branches) == 1:
        stmt = shaped(branches[0], PAGE_LIMIT).offset(_count_of(PAGE_OFFSET))
    else:
        # Each branch is read in index order up to the page's end; the merge
        # sorts at most (branches × page) rows, whatever the table's size.
        parts: list[Subquery] = [shaped(b, PAGE_END).subquery() for b in branches]
        merged = union_all(*(select(p) for p in parts)).subquery()
        stmt = (
            select(merged)
            .order_by(*keyset.order(merged))
            .offset(_count_of(PAGE_OFFSET))
            .limit(_count_of(PAGE_LIMIT))
        )
    counted = _count_statement(branches, keyset, shape.count)
    if counted is not None:
        stmt = stmt.add_columns(counted.scalar_subquery().label(_COUNTED))
    return stmt


@dataclass(frozen=True)
class Children:
    """Rows of another table that belong to each row of a list (an order's
    lines): ``parent`` is their column holding the row's ``id``; they come
    in ``line_no`` order as the row's ``key``."""

    table: Table
    parent: str
    key: str = "lines"


@cache
def children_statement(children: Table, parent: str, dialect: str) -> Select[Any]:
    """The children of the parents bound as ``ids``, by parent then
    ``line_no`` (the ``(parent, line_no)`` index's order); built once per
    table and dialect."""
    column: ColumnElement[Any] = children.c[parent]
    return select(children).where(in_ids(column, dialect)).order_by(column, children.c.line_no)


def _children_json(children: Children, parent_id: ColumnElement[Any]) -> ScalarSelect[Any]:
    """PostgreSQL: the children of the row ``parent_id`` as one JSON array
    (NULL for none), in ``line_no`` order; amounts as text, so they stay
    exact decimals (a JSON number would come back a float)."""
    table = children.table
    fields: list[Any] = []
    for column in table.c:
        if column.key == children.parent:
            continue
        value: ColumnElement[Any] = column
        if isinstance(column.type, Numeric) and not isinstance(column.type, Integer):
            value = cast(column, Text)
        fields += [literal(column.key, String), value]
    row = func.json_build_object(*fields)
    agg = func.json_agg(aggregate_order_by(row, table.c.line_no), type_=JSON)
    return select(agg).where(table.c[children.parent] == parent_id).scalar_subquery()


class Listing:
    """One list: its sort, its branches and, when the list belongs to one
    row, that row (``head``); rows of another table each row carries
    (``children``).  Whatever varies between two requests for
    the same shape must be a parameter of the branches (``bindparam``):
    each shape's statement is then built once, on first use."""

    def __init__(
        self,
        keyset: Keyset,
        branches: Sequence[Select[Any]],
        head: Select[Any] | None = None,
        children: Children | None = None,
    ) -> None:
        self.keyset = keyset
        self.branches = tuple(branches)
        self.head = head
        self.children = children
        self._statements: dict[tuple[Shape, str], Select[Any]] = {}
        self._counts: dict[Count, Select[Any] | None] = {}

    def statement(self, shape: Shape, dialect: str = "postgresql") -> Select[Any]:
        stmt = self._statements.get((shape, dialect))
        if stmt is None:
            stmt = self._statements[shape, dialect] = self._build(shape, dialect)
        return stmt

    def children_inline(self, dialect: str) -> bool:
        """The children come in the page's statement (PostgreSQL), not in a
        statement of their own."""
        return self.children is not None and dialect == "postgresql"

    def count(self, count: Count) -> Select[Any] | None:
        """The count alone (a page past the end has no row to carry it)."""
        if count not in self._counts:
            self._counts[count] = _count_statement(self.branches, self.keyset, count)
        return self._counts[count]

    @cached_property
    def everything(self) -> Select[Any] | CompoundSelect:
        """Every row of the list, unpaged (what the planner is asked to estimate)."""
        return self.branches[0] if len(self.branches) == 1 else union_all(*self.branches)

    @cached_property
    def estimate_key(self) -> Any:
        """What tells this list's estimates from another's, but the
        parameters: the statement and the values bound in it."""
        cache_key = self.everything._generate_cache_key()
        if cache_key is None:
            return None
        return (cache_key.key, tuple(repr(p.effective_value) for p in cache_key.bindparams))

    def _build(self, shape: Shape, dialect: str) -> Select[Any]:
        stmt = page_statement(self.branches, self.keyset, shape)
        if self.children is not None and dialect == "postgresql":
            # Around the page, so only its rows gather their children.
            page = stmt.subquery("page")
            lines = _children_json(self.children, page.c.id).label(_CHILDREN)
            stmt = select(page, lines).order_by(*self.keyset.order(page))
        if self.head is None:
            return stmt
        # The head's row, with the page beside it (or, for an empty page, one
        # row of NULLs): no row at all means no head.
        head, page = self.head.subquery("head"), stmt.subquery("page")
        labelled = [column.label(_HEAD + column.key) for column in head.c]
        return (
            select(*labelled, page)
            .select_from(head.outerjoin(page, true()))
            .order_by(*self.keyset.order(page))
        )


@dataclass(slots=True)
class Headed:
    """A page of a list that belongs to one row, and that row."""

    head: dict[str, Any]
    page: Page[dict[str, Any]]


async def fetch_page(
    session: Executor,
    request: PageRequest,
    keyset: Keyset,
    branches: Sequence[Select[Any]],
) -> Page[dict[str, Any]]:
    """One page of the list the branches make up (their values bound in
    them), in the keyset's order, as plain dicts."""
    return await fetch_listed(session, request, Listing(keyset, branches), {})


async def fetch_listed(
    session: Executor,
    request: PageRequest,
    listing: Listing,
    values: Mapping[str, Any],
) -> Page[dict[str, Any]]:
    """One page of ``listing`` with its branches' parameters ``values``."""
    found = await _fetch(session, request, listing, values)
    assert found is not None
    return found.page


async def fetch_headed(
    session: Executor,
    request: PageRequest,
    listing: Listing,
    values: Mapping[str, Any],
) -> Headed | None:
    """One page of a list that belongs to one row, and that row's columns;
    None when there is no such row."""
    return await _fetch(session, request, listing, values)


async def _fetch(
    session: Executor,
    request: PageRequest,
    listing: Listing,
    values: Mapping[str, Any],
) -> Headed | None:
    keyset = listing.keyset
    params = {**values, **page_values(keyset, request)}
    conn = await core_connection(session)
    dialect = conn.dialect.name
    shape = Shape.of(request)
    expected = None
    if request.count is Count.ESTIMATE and dialect == "postgresql":
        # The planner expects far more rows than the cap: its estimate is
        # the answer either way, so the bounded count (up to a thousand
        # index entries a page) is not read at all.
        expected = known_estimate(conn, listing, values)
        if expected is not None and expected > COUNT_SKIPPED_ABOVE:
            shape = Shape(shape.cursor, Count.NONE)
        else:
            expected = None
    selected = await select_rows(conn, listing.statement(shape, dialect), params)
    names, found = selected.names, selected.rows
    head: dict[str, Any] = {}
    if listing.head is not None:
        if not found:
            return None
        # The head's columns come first, then the page's.
        split = sum(1 for name in names if name.startswith(_HEAD))
        head = {k[len(_HEAD) :]: v for k, v in zip(names[:split], found[0][:split], strict=True)}
        names = names[split:]
        found = [row[split:] for row in found]
    rows = [dict(zip(names, row, strict=True)) for row in found]
    if listing.head is not None and all(v is None for v in keyset.values(rows[0])):
        rows = []  # the head's row alone: an empty page
    has_next = len(rows) > request.page_size
    rows = rows[: request.page_size]
    if listing.children is not None:
        await _attach_children(conn, listing.children, rows, listing.children_inline(dialect))
    cursor = request.key.encode(keyset.values(rows[-1])) if has_next else None
    page = Page(rows=rows, has_next=has_next, next_cursor=cursor, total=None)
    if _shows_the_end(request, page):
        page.total = request.offset + len(rows)
    elif expected is not None:
        page.total, page.estimated = expected, True
    elif request.count is not Count.NONE:
        await _total(conn, request, listing, values, params, page)
    return Headed(head, page)


async def _attach_children(
    conn: AsyncConnection, children: Children, rows: list[dict[str, Any]], inline: bool
) -> None:
    """Each row's children as its ``children.key``: from the page's own
    column (PostgreSQL), or one statement for the whole page."""
    if inline:
        for row in rows:
            row[children.key] = row.pop(_CHILDREN) or []
        return
    found: dict[Any, list[dict[str, Any]]] = {row["id"]: [] for row in rows}
    if found:
        stmt = children_statement(children.table, children.parent, conn.dialect.name)
        for child in (await conn.execute(stmt, {"ids": list(found)})).mappings():
            found[child[children.parent]].append(dict(child))
    for row in rows:
        row[children.key] = found[row["id"]]


def _shows_the_end(request: PageRequest, page: Page[Any]) -> bool:
    """The page shows where the list ends: the total is exact and free."""
    if request.count is Count.NONE or request.page is None or page.has_next:
        return False
    return bool(page.rows) or request.offset == 0


async def _total(
    conn: AsyncConnection,
    request: PageRequest,
    listing: Listing,
    values: Mapping[str, Any],
    params: Mapping[str, Any],
    page: Page[dict[str, Any]],
) -> None:
    rows = page.rows
    if rows:
        counted = int(rows[0][_COUNTED])
    else:
        stmt = listing.count(request.count)
        assert stmt is not None
        counted = int((await select_rows(conn, stmt, params)).scalar())
    if request.count is Count.EXACT or counted <= EXACT_COUNT_CAP:
        page.total = counted
    elif conn.dialect.name == "postgresql":
        estimate = await planner_estimate(conn, listing, values)
        page.total, page.estimated = max(estimate, counted), True


# The planner's estimates, by database (its connection pool), statement and
# parameters: they change only when the table is analyzed again, so one a
# minute is as good as one a page.
ESTIMATE_TTL_S = 60.0
_ESTIMATES_KEPT = 4096
_estimates: weakref.WeakKeyDictionary[Pool, dict[Any, tuple[float, int]]] = (
    weakref.WeakKeyDictionary()
)


def _estimate_key(listing: Listing, values: Mapping[str, Any]) -> Any:
    base = listing.estimate_key
    if base is None:
        return None
    given: tuple[Any, ...] = tuple(values.items())
    try:
        hash(given)
    except TypeError:  # a list among the values
        given = (repr(given),)
    return (base, given)


def forget_estimates() -> None:
    """Drop every remembered estimate: the tables were emptied or replaced
    wholesale (a test's fresh start), so none is near the truth."""
    _estimates.clear()


def _estimates_of(conn: AsyncConnection) -> dict[Any, tuple[float, int]]:
    pool = conn.sync_engine.pool
    found = _estimates.get(pool)
    if found is None:
        found = _estimates[pool] = {}
    return found


def known_estimate(
    conn: AsyncConnection, listing: Listing, values: Mapping[str, Any]
) -> int | None:
    """The planner's estimate for the listing with ``values``, if one was
    asked for in the last ``ESTIMATE_TTL_S``."""
    known = _estimates_of(conn).get(_estimate_key(listing, values))
    return known[1] if known is not None and known[0] > time.monotonic() else None


async def planner_estimate(
    conn: AsyncConnection, listing: Listing, values: Mapping[str, Any]
) -> int:
    """PostgreSQL's estimate of how many rows the listing's branches match
    with the filters' ``values`` (no row is read), remembered for
    ``ESTIMATE_TTL_S``."""
    known = known_estimate(conn, listing, values)
    if known is not None:
        return known
    key, estimates = _estimate_key(listing, values), _estimates_of(conn)
    plan: Any = await conn.execute(Explain(listing.everything, as_json=True), dict(values))
    plan = plan.scalar_one()
    if isinstance(plan, str):
        plan = json.loads(plan)
    estimate = int(plan[0]["Plan"]["Plan Rows"])
    if key is not None:
        if len(estimates) >= _ESTIMATES_KEPT:
            estimates.clear()
        estimates[key] = (time.monotonic() + ESTIMATE_TTL_S, estimate)
    return estimate
