from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from b24mw.admin import service
from b24mw.admin.schemas import OutboxJobRead, OutboxJobSummary, OutboxState, ThrottleState
from b24mw.kit.auth import Actor, Role, require
from b24mw.kit.db import DatabaseDep, ReadSession, ReadStatements, Session
from b24mw.kit.pagination import PageRequest, Paginated, pagination
from b24mw.kit.routing import ApiRoute
from b24mw.kit.schemas import COMMON_ERRORS, answer
from b24mw.kit.types import RowId
from b24mw.models.enums import JobKind
from b24mw.outbox import dlq
from b24mw.settings import Settings

router = APIRouter(route_class=ApiRoute, prefix="/admin", tags=["admin"], responses=COMMON_ERRORS)

Admin = Annotated[Actor, Depends(require(Role.ADMIN))]
DeadPages = Annotated[PageRequest, Depends(pagination(dlq.DLQ_CURSOR))]


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


@router.get("/dlq", response_model=Paginated[OutboxJobSummary])
async def list_dead_jobs(
    session: ReadStatements,
    _: Admin,
    page: DeadPages,
    kind: Annotated[JobKind | None, Query(description="only jobs of this kind")] = None,
) -> Response:
    """Dead jobs, most recently failed first."""
    found = await dlq.list_dead(session, page, kind=kind)
    items = [OutboxJobSummary.model_validate(dict(row)) for row in found.rows]
    return answer(Paginated[OutboxJobSummary].build(items, found, page))


@router.get("/dlq/{job_id}", response_model=OutboxJobRead)
async def show_dead_job(job_id: RowId, session: ReadSession, _: Admin) -> OutboxJobRead:
    """One job with its payload and every attempt's error and request id."""
    return OutboxJobRead.model_validate(await dlq.get(session, job_id))


@router.post("/dlq/{job_id}/replay", response_model=OutboxJobRead)
async def replay_dead_job(job_id: RowId, session: Session, actor: Admin) -> OutboxJobRead:
    """Put a dead job back in the queue as new attempts; its history stays. 409 if not dead."""
    return OutboxJobRead.model_validate(await dlq.replay(session, job_id, actor.sub))


@router.post("/dlq/{job_id}/discard", response_model=OutboxJobRead)
async def discard_dead_job(job_id: RowId, session: Session, actor: Admin) -> OutboxJobRead:
    """Close a dead job without delivering it; it stays on record. 409 if not dead."""
    return OutboxJobRead.model_validate(await dlq.discard(session, job_id, actor.sub))


@router.get("/outbox", response_model=OutboxState)
async def outbox_state(session: ReadSession, _: Admin) -> OutboxState:
    """Jobs by status, how many are due now, and the oldest due job."""
    return OutboxState.model_validate(await dlq.outbox_state(session))


@router.get("/throttle", response_model=ThrottleState)
async def throttle_state(
    session: ReadSession, db: DatabaseDep, settings: SettingsDep, _: Admin
) -> ThrottleState:
    """The shared Bitrix24 limiter: current rate, tokens, recent requests, blocked methods."""
    return await service.throttle_state(session, db, settings)
