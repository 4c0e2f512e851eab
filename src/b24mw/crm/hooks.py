"""Outbox hooks of closing a deal, run in the worker's transaction that
finishes the job (``outbox.hooks``).

- closed: the stage change succeeded.  The mirror takes the saved deal and
  remembers the stage b24mw set; ``integration.deal.closed`` is published;
  the deal is read again (automation runs after the save and may have moved
  it: that is recorded, not fought).
- refused: Bitrix24 refused the stage change (a required field, rights).
  The job is in the DLQ with Bitrix24's reason; the order's task gets a
  comment telling the manager what to fill in and how to replay.
- re-read: the deal as it stands after the close.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.crm import sync
from b24mw.crm.closing import REREAD_HOOK, deal_key
from b24mw.crm.flows import note_move_after_close
from b24mw.crm.repository import CrmRepository
from b24mw.history.repository import log_exchange
from b24mw.i18n import t
from b24mw.integration_events.cloudevents import build_event
from b24mw.models.base import utcnow
from b24mw.models.enums import LogDirection
from b24mw.outbox.enqueue import Outbox

EVENT_DEAL_CLOSED = "integration.deal.closed"
EVENT_SYSTEM = "crm"


def _item(result: Any) -> dict[str, Any] | None:
    item = result.get("item") if isinstance(result, dict) else None
    return item if isinstance(item, dict) else None


async def deal_closed(session: AsyncSession, context: dict[str, Any], result: Any) -> None:
    deal_id = int(context["deal_id"])
    stage = str(context["stage"])
    repo = CrmRepository(session)
    item = _item(result)
    if item is not None:
        await sync.store_item(session, sync.DEAL, item)
    await repo.set_b24mw_stage(deal_id, stage, utcnow())
    order = context.get("order") or {}
    outbox = Outbox.for_events(context.get("event_sinks") or [])
    deal = await repo.deal(deal_id)
    event = build_event(
        type=EVENT_DEAL_CLOSED,
        system=EVENT_SYSTEM,
        subject=f"crm/deals/{deal_id}",
        data={
            "deal_id_b24": deal_id,
            "stage_id": stage,
            "outcome": context.get("outcome"),
            "category_id": deal.category_id if deal is not None else None,
            "order_kind": order.get("kind"),
            "order_id": order.get("id"),
        },
    )
    outbox.event(session, event, ordering_key=f"events:crm/deals/{deal_id}")
    outbox.b24_call(
        session,
        "crm.item.get",
        {"entityTypeId": sync.DEAL, "id": deal_id},
        ordering_key=deal_key(deal_id),
        on_result=REREAD_HOOK,
        context={"deal_id": deal_id},
    )


async def deal_reread(session: AsyncSession, context: dict[str, Any], result: Any) -> None:
    item = _item(result)
    if item is None:
        return
    await sync.store_item(session, sync.DEAL, item)
    await note_move_after_close(session, int(context["deal_id"]))


async def deal_close_refused(
    session: AsyncSession, context: dict[str, Any], job_id: int, entry: dict[str, Any]
) -> None:
    deal_id = int(context["deal_id"])
    stage = str(context["stage"])
    reason = str(entry.get("error") or entry.get("code") or "?")
    log_exchange(
        session,
        direction=LogDirection.OUT,
        system="b24",
        endpoint="crm.item.update",
        status="refused",
        resource_ref=f"crm/deals/{deal_id}",
        response={"stage": stage, "reason": reason, "job_id": job_id},
        error_code=str(entry.get("code") or ""),
    )
    order = context.get("order") or {}
    sync_key = order.get("sync_key")
    if not sync_key:
        return  # an order with no task: nobody to tell in Bitrix24
    text = t(
        "crm.stage_refused",
        str(context.get("locale") or ""),
        deal=deal_id,
        stage=stage,
        reason=reason,
        job=job_id,
    )
    outbox = Outbox.for_events([])
    # The order's ordering key: a delivery whose task is not created yet gets
    # the comment once it is (the task-created hook fills the id in).
    task_id = await CrmRepository(session).task_of_order(str(order.get("kind")), int(order["id"]))
    outbox.b24_comment(session, task_id, text, ordering_key=str(sync_key))
