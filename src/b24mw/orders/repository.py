"""The repository both order kinds share (``OrderKindRepository``): one
order with its lines, the filtered list as index walks (``kit.listing``)
with the lines of a page, a page of history, and the version-checked UPDATE
of a status change."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cache
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from b24mw.kit.listing import Keyset
from b24mw.kit.pagination import Page, PageRequest
from b24mw.kit.repository import Repository, in_window
from b24mw.kit.staging import stage_update
from b24mw.kit.types import as_row_id
from b24mw.models.base import table_of
from b24mw.models.enums import OrderKind
from b24mw.models.history import HistoryEntry
from b24mw.models.orders import Delivery, InstantOrder
from b24mw.orders.schemas import OrderFilter

Order = TypeVar("Order")
EVENTS = table_of(HistoryEntry)
# The table behind each kind of tracked order (``orders.flows.OrderIdentity.kind``).
ORDER_TABLES = {OrderKind.INSTANT: table_of(InstantOrder), OrderKind.DELIVERY: table_of(Delivery)}
# History is read oldest first; the id orders events of one instant.
EVENT_KEYSET = Keyset((EVENTS.c.ts, EVENTS.c.id), descending=False)


@cache
def order_keyset(orders: Table) -> Keyset:
    """Newest first; the id breaks ties of ``created_at``."""
    return Keyset((orders.c.created_at, orders.c.id), descending=True)


def search_text(orders: Table, searched: Sequence[str]) -> ColumnElement[str]:
    """Every text ``q`` looks into, in one expression: on PostgreSQL the
    trigram index of migration 0012 is built on exactly this expression."""
    text: ColumnElement[str] = func.lower(orders.c[searched[0]])
    for name in searched[1:]:
        text = text.op("||")(literal_column("' '")).op("||")(func.lower(orders.c[name]))
    phone = func.coalesce(orders.c.client_phone, literal_column("''"))
    return text.op("||")(literal_column("' '")).op("||")(phone)


def _search(orders: Table, searched: Sequence[str], q: str) -> ColumnElement[bool]:
    # autoescape: the text is searched literally, "%" and "_" included.
    text = q.lower()
    fields = [func.lower(orders.c[name]).contains(text, autoescape=True) for name in searched]
    fields.append(orders.c.client_phone.contains(q, autoescape=True))
    # The joined text finds the candidates from its index; the fields decide
    # (a match across two fields is none).
    found: ColumnElement[bool] = search_text(orders, searched).contains(text, autoescape=True)
    found = and_(found, or_(*fields))
    if (number := as_row_id(q)) is not None:
        found = or_(found, orders.c.id == number, orders.c.task_id_b24 == number)
    return found


def order_branches(orders: Table, f: OrderFilter, searched: Sequence[str]) -> list[Select[Any]]:
    """One index walk per status asked for, on ``(status, created_at)`` or
    ``(courier_id, status, created_at)``; without a status, ``(created_at,
    id)`` or ``(courier_id, created_at, id)``.  ``q`` filters along the walk
    (``searched``: the text columns it looks into)."""
    stmt = select(orders)
    if f.courier_id is not None:
        stmt = stmt.where(orders.c.courier_id == f.courier_id)
    stmt = in_window(stmt, orders.c.created_at, f.created_from, f.created_to)
    if f.q:
        stmt = stmt.where(_search(orders, searched, f.q))
    if not f.statuses:
        return [stmt]
    return [stmt.where(orders.c.status == status) for status in dict.fromkeys(f.statuses)]


def event_branches(condition: ColumnElement[bool]) -> list[Select[Any]]:
    return [select(EVENTS).where(condition)]


class OrderKindRepository(Repository, ABC, Generic[Order]):
    """What an instant order and a delivery read alike: one with its lines,
    who may see one, the list with its filters, and a page of history.  A
    kind says which model and lines it is, which text columns ``q`` looks
    into, and which history rows are its own (``history``)."""

    __slots__ = ()
    model: ClassVar[type[Any]]
    orders: ClassVar[Table]
    lines: ClassVar[Table]
    searched: ClassVar[tuple[str, ...]]
    _get: ClassVar[Select[Any]]
    _head: ClassVar[Select[Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        model, orders = cls.model, cls.orders
        # One order with its lines in one round trip (the model's default is
        # a second SELECT); built once per kind, as every change starts here.
        cls._get = select(model).where(model.id == bindparam("id")).options(joinedload(model.lines))
        # Who may see an order and which task it shares: no lines needed.
        cls._head = select(orders.c.id, orders.c.courier_id, orders.c.task_id_b24).where(
            orders.c.id == bindparam("id")
        )

    async def get(self, key: int) -> Order | None:
        result = await self.session.execute(self._get, {"id": key})
        found: Order | None = result.unique().scalar_one_or_none()
        return found

    async def head(self, key: int) -> Row[Any] | None:
        """The order's ``id``, ``courier_id`` and ``task_id_b24``."""
        return (await self.session.execute(self._head, {"id": key})).first()

    @classmethod
    def list_branches(cls, f: OrderFilter) -> list[Select[Any]]:
        return order_branches(cls.orders, f, cls.searched)

    async def search(
        self, request: PageRequest, f: OrderFilter
    ) -> tuple[Page[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
        """A page of orders, and the lines of each (one more statement)."""
        page = await self.page(request, order_keyset(self.orders), self.list_branches(f))
        lines = await self.children(self.lines, "order_id", (row["id"] for row in page.rows))
        return page, lines

    @abstractmethod
    def history(self, head: Row[Any]) -> ColumnElement[bool]:
        """The ``task_events`` rows of the order ``head`` is the head of."""

    async def events(self, request: PageRequest, head: Row[Any]) -> Page[dict[str, Any]]:
        """A page of the order's history, oldest first."""
        return await self.page(request, EVENT_KEYSET, event_branches(self.history(head)))


def stage_status_move(
    session: AsyncSession,
    kind: OrderKind,
    *,
    order_id: int,
    version: int,
    values: dict[str, Any],
    conflict: Exception,
) -> None:
    """The UPDATE of a status change, matched on the version the change was
    checked against and written with the unit of work's other rows (one
    statement on PostgreSQL, at the commit): if another change got there first
    it matches nothing, and ``conflict`` ends the whole unit of work."""
    stage_update(
        session,
        ORDER_TABLES[kind],
        where={"id": order_id, "version": version},
        values=values,
        otherwise=conflict,
    )
