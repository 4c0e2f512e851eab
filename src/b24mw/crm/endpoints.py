from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from b24mw.crm import service
from b24mw.crm.repository import DealFilter, LeadFilter
from b24mw.crm.schemas import DEAL_CURSOR, LEAD_CURSOR, DealDetail, DealRead, LeadDetail, LeadRead
from b24mw.deps import ReadSessionDep
from b24mw.kit.auth import Actor, Role, require
from b24mw.kit.pagination import PageRequest, Paginated, pagination
from b24mw.kit.routing import ApiRoute, single_query
from b24mw.kit.schemas import COMMON_ERRORS
from b24mw.kit.types import QueryFlag, Rfc3339, RowId

router = APIRouter(
    route_class=ApiRoute,
    prefix="/crm",
    tags=["crm"],
    responses=COMMON_ERRORS,
    dependencies=[single_query("linked", "responsible", "modified_from", "modified_to")],
)

# Managers' data: admins and 1C read it; couriers do not.
Reader = Annotated[Actor, Depends(require(Role.ADMIN, Role.ONEC))]
# Bitrix24's stage and status ids: NEW, UC_NYL06U, C1:WON.
StageId = Annotated[
    str, Query(min_length=1, max_length=64, pattern=r"^(C[0-9]+:)?[A-Z][A-Z0-9_]*$")
]
BitrixUser = Annotated[int, Query(ge=1, lt=2**63)]
DealPages = Annotated[PageRequest, Depends(pagination(DEAL_CURSOR))]
LeadPages = Annotated[PageRequest, Depends(pagination(LEAD_CURSOR))]


async def _deal_filter(
    stage: Annotated[list[StageId] | None, Query(description="stage id, repeatable")] = None,
    pipeline: Annotated[
        list[Annotated[int, Query(ge=0, lt=2**31)]] | None,
        Query(description="pipeline (category) id, repeatable"),
    ] = None,
    responsible: Annotated[BitrixUser | None, Query(description="Bitrix24 user")] = None,
    modified_from: Annotated[Rfc3339 | None, Query(description="inclusive")] = None,
    modified_to: Annotated[Rfc3339 | None, Query(description="exclusive")] = None,
    linked: Annotated[
        QueryFlag | None, Query(description="true: with deliveries or orders; false: without")
    ] = None,
) -> DealFilter:
    return DealFilter(
        stages=tuple(stage or ()),
        categories=tuple(pipeline or ()),
        assigned_by_id=responsible,
        modified_from=modified_from,
        modified_to=modified_to,
        linked=linked,
    )


async def _lead_filter(
    status: Annotated[list[StageId] | None, Query(description="status id, repeatable")] = None,
    responsible: Annotated[BitrixUser | None, Query(description="Bitrix24 user")] = None,
    modified_from: Annotated[Rfc3339 | None, Query(description="inclusive")] = None,
    modified_to: Annotated[Rfc3339 | None, Query(description="exclusive")] = None,
) -> LeadFilter:
    return LeadFilter(
        statuses=tuple(status or ()),
        assigned_by_id=responsible,
        modified_from=modified_from,
        modified_to=modified_to,
    )


@router.get("/deals", response_model=Paginated[DealRead])
async def list_deals(
    session: ReadSessionDep,
    actor: Reader,
    filters: Annotated[DealFilter, Depends(_deal_filter)],
    page: DealPages,
) -> Paginated[DealRead]:
    """Deals mirrored from Bitrix24, most recently modified first (deleted ones
    are left out)."""
    return await service.list_deals(session, page, filters)


@router.get("/deals/{deal_id}", response_model=DealDetail)
async def get_deal(deal_id: RowId, session: ReadSessionDep, actor: Reader) -> DealDetail:
    """One deal with the deliveries and orders linked to it."""
    return await service.get_deal(session, deal_id)


@router.get("/leads", response_model=Paginated[LeadRead])
async def list_leads(
    session: ReadSessionDep,
    actor: Reader,
    filters: Annotated[LeadFilter, Depends(_lead_filter)],
    page: LeadPages,
) -> Paginated[LeadRead]:
    """Leads mirrored from Bitrix24 (none with Simple CRM), most recently
    modified first."""
    return await service.list_leads(session, page, filters)


@router.get("/leads/{lead_id}", response_model=LeadDetail)
async def get_lead(lead_id: RowId, session: ReadSessionDep, actor: Reader) -> LeadDetail:
    """One lead, with the deals that came from it."""
    return await service.get_lead(session, lead_id)
