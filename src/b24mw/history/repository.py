from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from b24mw.kit.masking import mask_personal
from b24mw.kit.request_context import current_request_id
from b24mw.kit.staging import StagedRow, stage
from b24mw.models.base import table_of, utcnow
from b24mw.models.enums import LogDirection, TaskEventType
from b24mw.models.history import HistoryEntry, IntegrationLog

Row = TypeVar("Row")
EVENTS = table_of(HistoryEntry)
LOG = table_of(IntegrationLog)


def _where_given(
    stmt: Select[Row], *filters: tuple[InstrumentedAttribute[Any], object]
) -> Select[Row]:
    """Narrow by each ``(column, value)`` whose value is given (not None)."""
    for column, value in filters:
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt


class HistoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add_event(self, values: dict[str, Any]) -> StagedRow:
        return stage(self.session, EVENTS, values)

    def add_log(self, values: dict[str, Any]) -> StagedRow:
        return stage(self.session, LOG, values)

    async def correlation_exists(self, correlation_id: str) -> bool:
        stmt = select(HistoryEntry.id).where(HistoryEntry.correlation_id == correlation_id)
        return (await self.session.execute(stmt)).first() is not None

    async def logs(
        self,
        *,
        request_id: str | None = None,
        resource_ref: str | None = None,
        system: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Sequence[IntegrationLog]:
        stmt = _where_given(
            select(IntegrationLog),
            (IntegrationLog.request_id, request_id),
            (IntegrationLog.resource_ref, resource_ref),
            (IntegrationLog.system, system),
            (IntegrationLog.status, status),
        )
        if since is not None:
            stmt = stmt.where(IntegrationLog.ts >= since)
        if until is not None:
            stmt = stmt.where(IntegrationLog.ts < until)
        stmt = stmt.order_by(IntegrationLog.ts.desc(), IntegrationLog.id.desc())
        return (await self.session.execute(stmt.offset(offset).limit(limit))).scalars().all()


def record_event(
    session: AsyncSession,
    *,
    type: TaskEventType,
    task_id_b24: int | None = None,
    status: str | None = None,
    actor_id: str | None = None,
    payload: dict[str, Any] | None = None,
    instant_order_id: int | None = None,
    order_id: int | None = None,
    return_id: uuid.UUID | None = None,
    correlation_id: str | None = None,
    photo_checksum: str | None = None,
) -> StagedRow:
    """Add a ``task_events`` row to the current unit of work."""
    return HistoryRepository(session).add_event(
        {
            "ts": utcnow(),
            "type": type,
            "task_id_b24": task_id_b24,
            "status": status,
            "actor_id": actor_id,
            "payload_json": payload or {},
            "instant_order_id": instant_order_id,
            "order_id": order_id,
            "return_id": return_id,
            "correlation_id": correlation_id,
            "photo_checksum": photo_checksum,
            "request_id": current_request_id(),
        }
    )


def log_exchange(
    session: AsyncSession,
    *,
    direction: LogDirection,
    system: str,
    endpoint: str,
    status: str,
    http_code: int | None = None,
    resource_ref: str | None = None,
    request: Any = None,
    response: Any = None,
    error_code: str | None = None,
    retry_count: int = 0,
    request_id: str | None = None,
) -> StagedRow:
    """Add an ``integration_log`` row; personal data in request/response is masked."""
    return HistoryRepository(session).add_log(
        {
            "ts": utcnow(),
            "direction": direction,
            "system": system,
            "endpoint": endpoint,
            "status": status,
            "http_code": http_code,
            "resource_ref": resource_ref,
            "request_json": mask_personal(request),
            "response_json": mask_personal(response),
            "error_code": error_code,
            "retry_count": retry_count,
            "request_id": request_id or current_request_id(),
        }
    )
