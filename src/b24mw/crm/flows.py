"""What a CRM event leads to, inside the inbox worker's unit of work.

The worker reads the item the event names (``reads``) in its shared batch;
``on_event`` stores the read in the mirror, records a deletion, and notices
two things about a deal b24mw closed: its own update coming back (an echo:
stored, nothing else), and a later move by a person or an automation rule
(recorded in ``integration_log``, never undone).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.crm import sync
from b24mw.crm.repository import CrmRepository
from b24mw.history.repository import log_exchange
from b24mw.models.enums import LogDirection
from b24mw.webhooks.events import EventRef
from b24mw.webhooks.flows import Result

MOVED_AFTER_CLOSE = "crm.deal.moved_after_close"


def read_key(ref: EventRef) -> str:
    return f"crm{ref.entity_type_id}_{ref.item_id}"


def reads(ref: EventRef) -> dict[str, tuple[str, dict[str, Any]]]:
    if ref.entity_type_id is None or not ref.item_id or ref.name.endswith("DELETE"):
        return {}
    return {read_key(ref): sync.item_get(ref.entity_type_id, ref.item_id)}


async def on_event(
    session: AsyncSession, ref: EventRef, answer: Any, self_user_id: int | None
) -> Result:
    entity_type_id = ref.entity_type_id
    if entity_type_id is None or not ref.item_id:
        return Result.note("ignored", f"{ref.name}: no item id")
    if ref.name.endswith("DELETE"):
        await sync.record_gone(session, entity_type_id, ref.item_id)
        return Result.note("deleted", "recorded as deleted")
    item = answer.get("item") if isinstance(answer, dict) else None
    if not isinstance(item, dict):
        # Gone (or never visible to us) by the time it was read.
        await sync.record_gone(session, entity_type_id, ref.item_id)
        return Result.note("item_not_found", "the item is gone or not visible")
    return await store_read(session, entity_type_id, item, self_user_id)


async def store_read(
    session: AsyncSession, entity_type_id: int, item: dict[str, Any], self_user_id: int | None
) -> Result:
    written, values = await sync.store_item(session, entity_type_id, item)
    if values is None:
        return Result.note("unreadable", "the answer holds no item")
    if not written:
        return Result.note("older_read", "a newer read is already stored")
    if entity_type_id == sync.DEAL:
        await note_move_after_close(session, values["id"])
    if sync.is_echo(item, self_user_id):
        return Result.note("own_change", "our own update coming back: stored, not acted on")
    return Result()


async def note_move_after_close(session: AsyncSession, deal_id: int) -> None:
    """A deal b24mw moved to a final stage that now stands elsewhere: someone
    (or an automation rule) moved it after us.  Recorded once per close,
    whichever read (an event's, the re-read after closing) sees it first."""
    repo = CrmRepository(session)
    deal = await repo.deal(deal_id)
    if deal is None or not deal.b24mw_stage_id or deal.b24mw_stage_at is None:
        return
    if deal.stage_id == deal.b24mw_stage_id:
        return
    ref = f"crm/deals/{deal_id}"
    if await repo.logged_since(ref, MOVED_AFTER_CLOSE, deal.b24mw_stage_at):
        return
    log_exchange(
        session,
        direction=LogDirection.IN,
        system="b24",
        endpoint=MOVED_AFTER_CLOSE,
        status="moved",
        resource_ref=ref,
        response={
            "set_by_b24mw": deal.b24mw_stage_id,
            "stage_now": deal.stage_id,
            "moved_by": deal.raw.get("movedBy") if isinstance(deal.raw, dict) else None,
        },
    )
