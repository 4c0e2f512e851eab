from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from b24mw.admin import service
from b24mw.admin.schemas import OutboxJobRead, OutboxJobSummary, OutboxState, ThrottleState
from b24mw.deps import DatabaseDep, ReadSessionDep, ReadStatementsDep, SettingsDep, WriteSessionDep
from b24mw.kit.auth import Actor, Role, require
from b24mw.kit.pagination import PageRequest, Paginated, paginated, pagination
from b24mw.kit.routing import ApiRoute
from b24mw.kit.schemas import COMMON_ERRORS, answer
from b24mw.kit.types import RowId
from b24mw.models.enums import JobKind
from b24mw.outbox import dlq

router = APIRouter(route_class=ApiRoute, prefix="/admin", tags=["admin"], responses=COMMON_ERRORS)

Admin = Annotated[Actor, Depends(require(Role.ADMIN))]
DeadPages = Annotated[PageRequest, Depends(pagination(dlq.DLQ_CURSOR))]


@router.get("/dlq", response_model=Paginated[OutboxJobSummary])
async def list_dead_jobs(
    session: ReadStatementsDep,
    _: Admin,
    page: DeadPages,
    kind: Annotated[JobKind | None, Query(description="only jobs of this kind")] = None,
) -> Response:
    """Dead jobs, most recently failed first."""
    found = await dlq.list_dead(session, page, kind=kind)
    return answer(paginated(OutboxJobSummary, found, page))


@router.get("/dlq/{job_id}", response_model=OutboxJobRead)
async def show_dead_job(job_id: RowId, session: ReadSessionDep, _: Admin) -> OutboxJobRead:
    """One job with its payload and every attempt's error and request id."""
    return OutboxJobRead.model_validate(await dlq.get(session, job_id))


@router.post("/dlq/{job_id}/replay", response_model=OutboxJobRead)
async def replay_dead_job(job_id: RowId, session: WriteSessionDep, actor: Admin) -> OutboxJobRead:
    """Put a dead job back in the queue as new attempts; its history stays. 409 if not dead."""
    return OutboxJobRead.model_validate(await dlq.replay(session, job_id, actor.sub))


@router.post("/dlq/{job_id}/discard", response_model=OutboxJobRead)
async def discard_dead_job(job_id: RowId, session: WriteSessionDep, actor: Admin) -> OutboxJobRead:
    """Close a dead job without delivering it; it stays on record. 409 if not dead."""
    return OutboxJobRead.model_validate(await dlq.discard(session, job_id, actor.sub))


@router.get("/outbox", response_model=OutboxState)
async def outbox_state(session: ReadSessionDep, _: Admin) -> OutboxState:
    """Jobs by status, how many are due now, and the oldest due job."""
    return OutboxState.model_validate(await dlq.outbox_state(session))


@router.get("/throttle", response_model=ThrottleState)
async def throttle_state(
    session: ReadSessionDep, db: DatabaseDep, settings: SettingsDep, _: Admin
) -> ThrottleState:
    """The shared Bitrix24 limiter: current rate, tokens, recent requests, blocked methods."""
    return await service.throttle_state(session, db, settings)
