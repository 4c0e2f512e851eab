"""Reads of the CRM mirror for the API, and the check a delivery's deal must pass."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.crm.repository import CrmRepository, DealFilter, LeadFilter
from b24mw.crm.schemas import DealDetail, DealRead, LeadDetail, LeadRead
from b24mw.deliveries.schemas import DeliveryRead
from b24mw.kit.errors import FieldError, NotFound, ValidationFailed
from b24mw.kit.pagination import PageRequest, Paginated, paginated
from b24mw.ww.schemas import OrderRead


async def require_open_deal(session: AsyncSession, deal_id: int) -> None:
    """A delivery links only to a deal b24mw knows (its pipeline decides the
    closing stage) and that is not deleted."""
    deal = await CrmRepository(session).deal(deal_id)
    if deal is None or deal.deleted_at is not None:
        reason = (
            "unknown deal: it appears here within seconds of its creation in Bitrix24"
            if deal is None
            else "the deal was deleted in Bitrix24"
        )
        raise ValidationFailed(
            f"Deal {deal_id}: {reason}.", errors=[FieldError("deal_id_b24", reason)]
        )


async def list_deals(
    session: AsyncSession, request: PageRequest, filters: DealFilter
) -> Paginated[DealRead]:
    return paginated(DealRead, await CrmRepository(session).search_deals(request, filters), request)


async def get_deal(session: AsyncSession, deal_id: int) -> DealDetail:
    repo = CrmRepository(session)
    deal = await repo.deal(deal_id)
    if deal is None:
        raise NotFound(f"Deal {deal_id} not found.")
    return DealDetail(
        **DealRead.model_validate(deal).model_dump(),
        deliveries=[DeliveryRead.model_validate(d) for d in await repo.deliveries_of(deal_id)],
        orders=[OrderRead.model_validate(o) for o in await repo.orders_of(deal_id)],
    )


async def list_leads(
    session: AsyncSession, request: PageRequest, filters: LeadFilter
) -> Paginated[LeadRead]:
    return paginated(LeadRead, await CrmRepository(session).search_leads(request, filters), request)


async def get_lead(session: AsyncSession, lead_id: int) -> LeadDetail:
    repo = CrmRepository(session)
    lead = await repo.lead(lead_id)
    if lead is None:
        raise NotFound(f"Lead {lead_id} not found.")
    return LeadDetail(
        **LeadRead.model_validate(lead).model_dump(),
        deal_ids_b24=list(await repo.deals_of_lead(lead_id)),
    )
