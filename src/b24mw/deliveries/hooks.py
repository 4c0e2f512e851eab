"""The ``tasks.task.add`` result hook: link the new Bitrix24 task to its delivery.

Runs in the worker's transaction that marks the add job done, so the link,
its history row and the task id filled into the delivery's waiting jobs
commit together with the job's success.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.deliveries.repository import DeliveryRepository
from b24mw.history.repository import log_exchange, record_event
from b24mw.models.enums import LogDirection, TaskEventType
from b24mw.outbox.repository import OutboxRepository

TASK_CREATED_HOOK = "deliveries.task_created"
HOOK_ACTOR = "b24"


def sync_key(delivery_id: int) -> str:
    """Ordering key of every Bitrix24 job of a delivery, the task add first."""
    return f"delivery:{delivery_id}"


def task_id_from(result: Any) -> int:
    """The task id from ``tasks.task.add``'s answer: ``{"task": {"id": "17"}}``,
    or the same inside a full envelope (``{"result": ...}``)."""
    if isinstance(result, dict):
        if isinstance(result.get("task"), dict):
            return int(result["task"]["id"])
        if "result" in result:
            return task_id_from(result["result"])
        if "id" in result:
            return int(result["id"])
    raise ValueError(f"no task id in the tasks.task.add result: {result!r}"[:300])


async def link_created_task(session: AsyncSession, context: dict[str, Any], result: Any) -> None:
    delivery_id = int(context["delivery_id"])
    task_id = task_id_from(result)
    repo = DeliveryRepository(session)
    linked, delivery = await repo.link_task(delivery_id, task_id)
    ref = f"deliveries/{delivery_id}"
    if delivery is None:
        return
    if not linked:
        if delivery.task_id_b24 != task_id:
            # A second task for one delivery (e.g. an add repeated after a
            # timeout): keep the first, leave a trace for an operator.
            log_exchange(
                session,
                direction=LogDirection.INTERNAL,
                system="b24",
                endpoint="tasks.task.add",
                status="duplicate",
                resource_ref=ref,
                response={"kept": delivery.task_id_b24, "ignored": task_id},
                error_code="duplicate_task",
            )
        return
    filled = await OutboxRepository(session).fill_task_id(sync_key(delivery_id), task_id)
    record_event(
        session,
        type=TaskEventType.STATUS,
        task_id_b24=task_id,
        status=delivery.status,
        actor_id=HOOK_ACTOR,
        payload={"event": "task_created", "task_id_b24": task_id, "jobs_filled": filled},
        order_id=delivery_id,
    )
