"""The repository both order kinds share (``OrderKindRepository``): one
order with its lines, the filtered list as index walks (``kit.listing``)
with the lines of a page, a page of history, and the version-checked UPDATE
of a status change."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cache
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
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

from b24mw.kit.listing import (
    Children,
    Keyset,
    Listing,
    each_value,
    fetch_headed,
    fetch_listed,
    given,
    one_branch_each,
    param,
)
from b24mw.kit.pagination import Page, PageRequest
from b24mw.kit.repository import Repository
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


def _like(text: str) -> str:
    """``text`` found anywhere, as a LIKE pattern that takes it literally
    ("%" and "_" included; ``/`` escapes)."""
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def _search(orders: Table, searched: Sequence[str], by_number: bool) -> ColumnElement[bool]:
    """``q`` (bound as ``q_text``: lower-cased, and ``q_phone``: as given)
    in any searched field, or (``by_number``) the order or task id
    ``q_number``."""
    text = bindparam("q_text", type_=String)
    fields = [func.lower(orders.c[name]).like(text, escape="/") for name in searched]
    fields.append(orders.c.client_phone.like(bindparam("q_phone", type_=String), escape="/"))
    # The joined text finds the candidates from its index; the fields decide
    # (a match across two fields is none).
    found: ColumnElement[bool] = search_text(orders, searched).like(text, escape="/")
    found = and_(found, or_(*fields))
    if by_number:
        number = bindparam("q_number", type_=orders.c.id.type)
        found = or_(found, orders.c.id == number, orders.c.task_id_b24 == number)
    return found


def order_listing(
    orders: Table, lines: Table, f: OrderFilter, searched: Sequence[str]
) -> tuple[Listing, dict[str, Any]]:
    """The list of one order kind narrowed to ``f``, and its parameters."""
    # An empty q searches for nothing: the list unfiltered, as before.
    names, values = given(
        courier_id=f.courier_id, created_from=f.created_from, created_to=f.created_to, q=f.q or None
    )
    number = None
    if f.q:
        values.update(q_text=_like(f.q.lower()), q_phone=_like(f.q))
        number = as_row_id(f.q)
        if number is not None:
            values["q_number"] = number
    values.pop("q", None)
    statuses = each_value("status", f.statuses)
    by_number = number is not None
    listing = _order_listing(orders, lines, tuple(searched), names, by_number, len(statuses))
    return listing, {**values, **statuses}


@cache
def _order_listing(
    orders: Table,
    lines: Table,
    searched: tuple[str, ...],
    names: frozenset[str],
    by_number: bool,
    statuses: int,
) -> Listing:
    """One index walk per status asked for, on ``(status, created_at)`` or
    ``(courier_id, status, created_at)``; without a status, ``(created_at,
    id)`` or ``(courier_id, created_at, id)``.  ``q`` filters along the walk
    (``searched``: the text columns it looks into)."""
    stmt = select(orders)
    if "courier_id" in names:
        stmt = stmt.where(orders.c.courier_id == param(orders.c.courier_id))
    if "created_from" in names:
        stmt = stmt.where(orders.c.created_at >= param(orders.c.created_at, "created_from"))
    if "created_to" in names:
        stmt = stmt.where(orders.c.created_at < param(orders.c.created_at, "created_to"))
    if "q" in names:
        stmt = stmt.where(_search(orders, searched, by_number))
    branches = one_branch_each(stmt, orders.c.status, statuses, "status")
    return Listing(order_keyset(orders), branches, children=Children(lines, "order_id"))


class OrderHead(NamedTuple):
    """Who may see an order, and the task it shares."""

    id: int
    courier_id: str | None
    task_id_b24: int | None


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
    history_listing: ClassVar[Listing]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        model, orders = cls.model, cls.orders
        # One order with its lines in one round trip (the model's default is
        # a second SELECT); built once per kind, as every change starts here.
        cls._get = select(model).where(model.id == bindparam("id")).options(joinedload(model.lines))
        # The order's history with its head (who may see it, which task it
        # shares; no head is a 404) in one statement, built once per shape.
        order_id = bindparam("id", type_=orders.c.id.type)
        head: Select[Any] = select(orders.c.id, orders.c.courier_id, orders.c.task_id_b24)
        cls.history_listing = Listing(
            EVENT_KEYSET,
            [select(EVENTS).where(cls.history(order_id))],
            head=head.where(orders.c.id == order_id),
        )

    async def get(self, key: int) -> Order | None:
        result = await self.session.execute(self._get, {"id": key})
        found: Order | None = result.unique().scalar_one_or_none()
        return found

    @classmethod
    def listing(cls, f: OrderFilter) -> tuple[Listing, dict[str, Any]]:
        return order_listing(cls.orders, cls.lines, f, cls.searched)

    async def search(self, request: PageRequest, f: OrderFilter) -> Page[dict[str, Any]]:
        """A page of orders, each with its ``lines``."""
        return await fetch_listed(self.session, request, *self.listing(f))

    @classmethod
    @abstractmethod
    def history(cls, order_id: ColumnElement[int]) -> ColumnElement[bool]:
        """The ``task_events`` rows of the order ``order_id``."""

    async def events(
        self, request: PageRequest, key: int
    ) -> tuple[OrderHead, Page[dict[str, Any]]] | None:
        """A page of the order's history, oldest first, with the order's
        head; None for no order."""
        found = await fetch_headed(self.session, request, self.history_listing, {"id": key})
        return None if found is None else (OrderHead(**found.head), found.page)


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
