from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from b24mw.kit.pagination import Page, PageRequest
from b24mw.lifecycle import repository as lists
from b24mw.lifecycle.schemas import OrderFilter
from b24mw.models.base import table_of, utcnow
from b24mw.models.enums import JobKind, OutboxStatus
from b24mw.models.ops import OutboxJob
from b24mw.models.orders import Delivery, DeliveryLine

# Parameter names Bitrix24 uses for the task id: task.commentitem.* / tasks.task.*
TASK_PARAMS = ("TASKID", "taskId")

# One round trip with the lines (the model's default is a second SELECT); built once.
_GET = (
    select(Delivery)
    .where(Delivery.id == bindparam("delivery_id"))
    .options(joinedload(Delivery.lines))
)

_DELIVERIES = table_of(Delivery)
_LINES = table_of(DeliveryLine)
_HEAD = select(_DELIVERIES.c.id, _DELIVERIES.c.courier_id).where(
    _DELIVERIES.c.id == bindparam("delivery_id")
)


def list_branches(f: OrderFilter) -> list[Select[Any]]:
    return lists.order_branches(_DELIVERIES, f, ("external_id_1c", "title", "customer_name"))


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, delivery: Delivery) -> None:
        self.session.add(delivery)

    async def get(self, delivery_id: int) -> Delivery | None:
        result = await self.session.execute(_GET, {"delivery_id": delivery_id})
        return result.unique().scalar_one_or_none()

    async def id_by_external(self, external_id_1c: str) -> int | None:
        stmt = select(Delivery.id).where(Delivery.external_id_1c == external_id_1c)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def head(self, delivery_id: int) -> Row[Any, Any] | None:
        """The delivery's id and courier (``.courier_id``): who may see it."""
        return (await self.session.execute(_HEAD, {"delivery_id": delivery_id})).first()

    async def search(
        self, request: PageRequest, f: OrderFilter
    ) -> tuple[Page[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
        branches = list_branches(f)
        return await lists.order_page(self.session, request, _DELIVERIES, _LINES, branches)

    async def events(self, request: PageRequest, delivery_id: int) -> Page[dict[str, Any]]:
        return await lists.event_page(self.session, request, lists.EVENTS.c.order_id == delivery_id)

    async def link_task(self, delivery_id: int, task_id_b24: int) -> tuple[bool, Delivery | None]:
        """Store the task id unless one is there; answer (stored now, the row).

        A plain UPDATE that bumps ``version``: it takes the row lock (so a
        status change in flight finishes first and its jobs are visible
        afterwards) and makes a status change that read the row before it
        fail its version check (409) instead of writing a job without a task.
        """
        result: Any = await self.session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.task_id_b24.is_(None))
            .values(task_id_b24=task_id_b24, version=Delivery.version + 1, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        row = (
            await self.session.execute(
                select(Delivery)
                .where(Delivery.id == delivery_id)
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        return result.rowcount == 1, row

    async def fill_task_id(self, ordering_key: str, task_id_b24: int) -> int:
        """Put the task id into the unsent Bitrix24 jobs of ``ordering_key`` that
        were written before the task existed; answer how many."""
        stmt = (
            select(OutboxJob)
            .where(
                OutboxJob.ordering_key == ordering_key,
                OutboxJob.kind == JobKind.B24_CALL,
                # Dead too: if they were tried before the task existed (the
                # add itself was dead-lettered), a replay now carries the id.
                OutboxJob.status.in_((OutboxStatus.PENDING, OutboxStatus.DEAD)),
            )
            .order_by(OutboxJob.id)
        )
        filled = 0
        for job in (await self.session.execute(stmt)).scalars():
            params = dict(job.payload.get("params") or {})
            missing = [p for p in TASK_PARAMS if p in params and params[p] is None]
            if not missing:
                continue
            for name in missing:
                params[name] = task_id_b24
            # A new dict, so the JSON column is seen as changed.
            job.payload = {**job.payload, "params": params}
            filled += 1
        await self.session.flush()
        return filled
