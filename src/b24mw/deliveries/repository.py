from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select, update

from b24mw.models.base import table_of, utcnow
from b24mw.models.orders import Delivery, DeliveryLine
from b24mw.orders import repository as lists

_DELIVERIES = table_of(Delivery)
_LINES = table_of(DeliveryLine)


class DeliveryRepository(lists.OrderKindRepository[Delivery]):
    __slots__ = ()
    model = Delivery
    orders = _DELIVERIES
    lines = _LINES
    searched = ("external_id_1c", "title", "customer_name")

    def add(self, delivery: Delivery) -> None:
        self.unit.add(delivery)

    async def id_by_external(self, external_id_1c: str) -> int | None:
        stmt = select(Delivery.id).where(Delivery.external_id_1c == external_id_1c)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    @classmethod
    def history(cls, order_id: ColumnElement[int]) -> ColumnElement[bool]:
        return lists.EVENTS.c.order_id == order_id

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
