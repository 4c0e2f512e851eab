"""The base every repository builds on: its session, the dialect it talks
to, reading a row by key, and a list as pages (``kit.listing``) with the
child rows of each page (an order's lines, a return's lines).

A repository subclasses ``Repository`` (SQL of its own, no model) or
``ModelRepository`` (one model it gets and adds by primary key), describes
each of its lists as a ``Keyset`` and the branches of its filters, and asks
``page`` for one page of it.  What stays in the subclass is only what is its
own: the statements, the filters, the PostgreSQL fast paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.kit.db import core_connection
from b24mw.kit.listing import Keyset, fetch_page, in_ids
from b24mw.kit.pagination import Page, PageRequest

M = TypeVar("M")


def in_window(
    stmt: Select[Any], column: ColumnElement[Any], since: Any | None, before: Any | None
) -> Select[Any]:
    """``stmt`` kept to rows whose ``column`` is at or after ``since`` and
    before ``before`` (either bound optional): every list's time filter."""
    if since is not None:
        stmt = stmt.where(column >= since)
    if before is not None:
        stmt = stmt.where(column < before)
    return stmt


class Repository:
    """A repository's session and the reads every repository shares."""

    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    async def page(
        self, request: PageRequest, keyset: Keyset, branches: list[Select[Any]]
    ) -> Page[dict[str, Any]]:
        """One page of the list the branches make up, in the keyset's order."""
        return await fetch_page(self.session, request, keyset, branches)

    async def children(
        self, children: Table, parent: str, parent_ids: Iterable[Any]
    ) -> dict[Any, list[dict[str, Any]]]:
        """The rows of ``children`` whose ``parent`` column points at one of
        ``parent_ids``, grouped by it, each group in ``line_no`` order: one
        statement for a whole page (every parent in the answer, even one
        without children)."""
        found: dict[Any, list[dict[str, Any]]] = {key: [] for key in parent_ids}
        if found:
            stmt = children_statement(children, parent, self.dialect)
            conn = await core_connection(self.session)
            for row in (await conn.execute(stmt, {"ids": list(found)})).mappings():
                found[row[parent]].append(dict(row))
        return found


@cache
def children_statement(children: Table, parent: str, dialect: str) -> Select[Any]:
    """The children of the parents bound as ``ids``, by parent then
    ``line_no`` (the ``(parent, line_no)`` index's order); built once per
    table and dialect."""
    column: ColumnElement[Any] = children.c[parent]
    return select(children).where(in_ids(column, dialect)).order_by(column, children.c.line_no)


class ModelRepository(Repository, Generic[M]):
    """A repository of one model (``model``), read and added by primary key."""

    __slots__ = ()
    model: ClassVar[type[Any]]

    async def get(self, key: Any) -> M | None:
        found: M | None = await self.session.get(self.model, key)
        return found

    def add(self, row: M) -> None:
        self.session.add(row)
