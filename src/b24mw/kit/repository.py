"""The base every repository builds on: its session, the dialect it talks
to, reading a row by key, and a list as pages (``kit.listing``; a page's
rows carry their children, an order's or a return's lines, through
``kit.listing.Children``).

A repository subclasses ``Repository`` (SQL of its own, no model) or
``ModelRepository`` (one model it gets and adds by primary key), describes
each of its lists as a ``Keyset`` and the branches of its filters (or a
prepared ``kit.listing.Listing``), and asks ``page`` (``fetch_listed``) for
one page of it.  What stays in the subclass is only what is its
own: the statements, the filters, the PostgreSQL fast paths.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ColumnElement, Select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from b24mw.kit.db import Executor
from b24mw.kit.listing import Keyset, fetch_page
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

    def __init__(self, session: Executor) -> None:
        self.session = session

    @property
    def unit(self) -> AsyncSession:
        """The session, for what only a session does (the ORM, staged rows,
        ``flush``).  A repository made over a statement read's connection
        (``kit.db.StatementReads``) reads with Core statements only."""
        if isinstance(self.session, AsyncConnection):
            raise TypeError(f"{type(self).__name__}: a statement read's connection has no session")
        return self.session

    @property
    def dialect(self) -> str:
        if isinstance(self.session, AsyncConnection):
            return self.session.dialect.name
        return self.session.get_bind().dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    async def page(
        self, request: PageRequest, keyset: Keyset, branches: list[Select[Any]]
    ) -> Page[dict[str, Any]]:
        """One page of the list the branches make up, in the keyset's order."""
        return await fetch_page(self.session, request, keyset, branches)


class ModelRepository(Repository, Generic[M]):
    """A repository of one model (``model``), read and added by primary key."""

    __slots__ = ()
    model: ClassVar[type[Any]]

    async def get(self, key: Any) -> M | None:
        found: M | None = await self.unit.get(self.model, key)
        return found

    def add(self, row: M) -> None:
        self.unit.add(row)
