"""The only place the CRM flow builds SQL: the deal and lead mirror, the
pipelines, and the orders that point at a deal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from b24mw.kit.listing import Keyset
from b24mw.kit.pagination import Page, PageRequest
from b24mw.kit.repository import Repository, in_window
from b24mw.models.base import table_of
from b24mw.models.crm import CrmDeal, CrmLead, CrmPipeline
from b24mw.models.enums import OrderKind
from b24mw.models.history import IntegrationLog
from b24mw.models.orders import Delivery, InstantOrder

Mirror = type[CrmDeal] | type[CrmLead]
DEALS, LEADS = table_of(CrmDeal), table_of(CrmLead)
# Most recently modified first; the id splits ties (both lists' indexes).
DEALS_KEYSET = Keyset((DEALS.c.b24_updated_at, DEALS.c.id), descending=True)
LEADS_KEYSET = Keyset((LEADS.c.b24_updated_at, LEADS.c.id), descending=True)


@dataclass(frozen=True, slots=True)
class DealFilter:
    stages: tuple[str, ...] = ()
    categories: tuple[int, ...] = ()
    assigned_by_id: int | None = None
    modified_from: datetime | None = None
    modified_to: datetime | None = None
    linked: bool | None = None
    include_deleted: bool = False


@dataclass(frozen=True, slots=True)
class LeadFilter:
    statuses: tuple[str, ...] = ()
    assigned_by_id: int | None = None
    modified_from: datetime | None = None
    modified_to: datetime | None = None
    include_deleted: bool = False


def _linked() -> ColumnElement[bool]:
    """A deal some delivery or order points at.  The linked ids are read from
    the ``deal_id_b24`` indexes, non-null entries only: the cost follows the
    links, not the size of the order tables (an EXISTS under OR becomes a
    hashed subplan over the whole table on PostgreSQL)."""
    return or_(
        CrmDeal.id.in_(select(Delivery.deal_id_b24).where(Delivery.deal_id_b24.is_not(None))),
        CrmDeal.id.in_(
            select(InstantOrder.deal_id_b24).where(InstantOrder.deal_id_b24.is_not(None))
        ),
    )


class CrmRepository(Repository):
    __slots__ = ()

    async def upsert(self, model: Mirror, values: dict[str, Any]) -> bool:
        """Insert, or overwrite only if this read is not older than the stored
        one (Bitrix24's modified time, then our read time for reads of one
        second): ``False`` when a newer read is already there."""
        insert = (pg_insert if self.is_postgres else sqlite_insert)(model).values(**values)
        table = model.__table__
        newer = or_(
            table.c.b24_updated_at < insert.excluded.b24_updated_at,
            and_(
                table.c.b24_updated_at == insert.excluded.b24_updated_at,
                table.c.read_at <= insert.excluded.read_at,
            ),
        )
        changed = {k: insert.excluded[k] for k in values if k not in ("id", "created_at")}
        stmt = insert.on_conflict_do_update(
            index_elements=["id"], set_=changed, where=newer
        ).returning(table.c.id)
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def mark_deleted(self, model: Mirror, item_id: int, now: datetime) -> bool:
        stmt = (
            update(model)
            .where(model.id == item_id, model.deleted_at.is_(None))
            .values(deleted_at=now, updated_at=now)
        )
        result: Any = await self.session.execute(stmt)
        return bool(result.rowcount)

    async def deal(self, deal_id: int) -> CrmDeal | None:
        return await self.unit.get(CrmDeal, deal_id, populate_existing=True)

    async def lead(self, lead_id: int) -> CrmLead | None:
        return await self.unit.get(CrmLead, lead_id, populate_existing=True)

    async def set_b24mw_stage(self, deal_id: int, stage_id: str, now: datetime) -> None:
        await self.session.execute(
            update(CrmDeal)
            .where(CrmDeal.id == deal_id)
            .values(b24mw_stage_id=stage_id, b24mw_stage_at=now)
        )

    async def search_deals(self, request: PageRequest, f: DealFilter) -> Page[dict[str, Any]]:
        return await self.page(request, DEALS_KEYSET, deal_branches(f))

    async def search_leads(self, request: PageRequest, f: LeadFilter) -> Page[dict[str, Any]]:
        return await self.page(request, LEADS_KEYSET, lead_branches(f))

    async def deliveries_of(self, deal_id: int) -> Sequence[Delivery]:
        stmt = select(Delivery).where(Delivery.deal_id_b24 == deal_id).order_by(Delivery.id)
        return (await self.session.execute(stmt)).scalars().all()

    async def orders_of(self, deal_id: int) -> Sequence[InstantOrder]:
        stmt = (
            select(InstantOrder)
            .where(InstantOrder.deal_id_b24 == deal_id)
            .order_by(InstantOrder.id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def logged_since(self, resource_ref: str, endpoint: str, since: datetime) -> bool:
        stmt = select(IntegrationLog.id).where(
            IntegrationLog.resource_ref == resource_ref,
            IntegrationLog.endpoint == endpoint,
            IntegrationLog.ts >= since,
        )
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def task_of_order(self, kind: str, order_id: int) -> int | None:
        """The Bitrix24 task of a delivery (``kind`` "delivery") or instant order."""
        model = Delivery if kind == OrderKind.DELIVERY else InstantOrder
        stmt = select(model.task_id_b24).where(model.id == order_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def deals_of_lead(self, lead_id: int) -> Sequence[int]:
        stmt = select(CrmDeal.id).where(CrmDeal.lead_id_b24 == lead_id).order_by(CrmDeal.id)
        return (await self.session.execute(stmt)).scalars().all()

    # -- pipelines -------------------------------------------------------

    async def pipeline(self, category_id: int) -> CrmPipeline | None:
        return await self.unit.get(CrmPipeline, category_id, populate_existing=True)

    async def pipelines(self) -> Sequence[CrmPipeline]:
        stmt = select(CrmPipeline).order_by(CrmPipeline.category_id)
        return (await self.session.execute(stmt)).scalars().all()

    async def put_pipeline(self, values: dict[str, Any]) -> None:
        insert = (pg_insert if self.is_postgres else sqlite_insert)(CrmPipeline).values(**values)
        changed = {k: insert.excluded[k] for k in values if k != "category_id"}
        await self.session.execute(
            insert.on_conflict_do_update(index_elements=["category_id"], set_=changed)
        )


def deal_branches(f: DealFilter) -> list[Select[Any]]:
    """The deals list, most recently modified first: a walk down
    ``ix_crm_deals_b24_updated_at`` with the filters applied along it."""
    stmt = select(DEALS)
    if not f.include_deleted:
        stmt = stmt.where(DEALS.c.deleted_at.is_(None))
    if f.stages:
        stmt = stmt.where(DEALS.c.stage_id.in_(f.stages))
    if f.categories:
        stmt = stmt.where(DEALS.c.category_id.in_(f.categories))
    if f.assigned_by_id is not None:
        stmt = stmt.where(DEALS.c.assigned_by_id == f.assigned_by_id)
    stmt = in_window(stmt, DEALS.c.b24_updated_at, f.modified_from, f.modified_to)
    if f.linked is not None:
        stmt = stmt.where(_linked() if f.linked else ~_linked())
    return [stmt]


def lead_branches(f: LeadFilter) -> list[Select[Any]]:
    stmt = select(LEADS)
    if not f.include_deleted:
        stmt = stmt.where(LEADS.c.deleted_at.is_(None))
    if f.statuses:
        stmt = stmt.where(LEADS.c.status_id.in_(f.statuses))
    if f.assigned_by_id is not None:
        stmt = stmt.where(LEADS.c.assigned_by_id == f.assigned_by_id)
    stmt = in_window(stmt, LEADS.c.b24_updated_at, f.modified_from, f.modified_to)
    return [stmt]
