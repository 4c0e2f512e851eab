"""What an order's status change does to its deal, inside the caller's unit of
work (no network): a timeline comment on the deal for every change, and at
the end the stage change that closes it.

All of a deal's jobs share the ordering key ``deal:<id>``, so the worker
delivers them in the order the changes happened.  The stage an order's end
leads to:

- DONE → the pipeline's final success stage (``WON``, ``C1:WON``);
- REFUSED, or DONE after FAILED (closed as not delivered) → the lost stage
  configured for the pipeline (``B24MW_CRM_LOST_STAGES``), else its final
  failure stage.

Both final stages come from the pipeline cache (``crm.reconcile``); a
pipeline not cached yet falls back to the portal's fixed ids of its system
stages (``WON``/``LOSE``, ``C<id>:WON``/``C<id>:LOSE``).  The deal's
pipeline comes from the mirror: a deal b24mw has never read is not moved
(there is no telling which pipeline's stage to set), nor is one the mirror
shows closed already (someone decided), nor a deleted one (which gets no
comment either); each is recorded in ``integration_log``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.crm.repository import CrmRepository
from b24mw.history.repository import log_exchange
from b24mw.models.enums import LogDirection
from b24mw.outbox.enqueue import Outbox, new_marker, with_marker

WON = "won"
LOST = "lost"
DONE, REFUSED, FAILED = "DONE", "REFUSED", "FAILED"
CLOSED_HOOK = "crm.deal_closed"
REFUSED_HOOK = "crm.deal_close_refused"
REREAD_HOOK = "crm.deal_reread"


@dataclass(frozen=True, slots=True)
class OrderRef:
    """The order a deal is told about (a delivery or an instant order)."""

    kind: str
    id: int
    ref: str
    task_id_b24: int | None
    sync_key: str | None
    deal_id_b24: int


def deal_key(deal_id: int) -> str:
    return f"deal:{deal_id}"


def outcome(source: str, target: str) -> str | None:
    if target == REFUSED or (target == DONE and source == FAILED):
        return LOST
    if target == DONE:
        return WON
    return None


def conventional_stage(category_id: int, result: str) -> str:
    prefix = f"C{category_id}:" if category_id else ""
    return prefix + ("WON" if result == WON else "LOSE")


async def target_stage(
    repo: CrmRepository, category_id: int, result: str, lost_stages: dict[int, str]
) -> str:
    if result == LOST and category_id in lost_stages:
        return lost_stages[category_id]
    pipeline = await repo.pipeline(category_id)
    if pipeline is not None:
        stage = pipeline.success_stage_id if result == WON else pipeline.failure_stage_id
        if stage:
            return stage
    return conventional_stage(category_id, result)


def timeline_comment(session: AsyncSession, outbox: Outbox, deal_id: int, text: str) -> None:
    """A comment on the deal's timeline with a job marker, so a retry after a
    lost answer looks for it before posting again (``outbox.verify``)."""
    marker = new_marker()
    outbox.b24_call(
        session,
        "crm.timeline.comment.add",
        {
            "fields": {
                "ENTITY_TYPE": "deal",
                "ENTITY_ID": deal_id,
                "COMMENT": with_marker(text, marker),
            }
        },
        ordering_key=deal_key(deal_id),
        marker=marker,
    )


async def follow(
    session: AsyncSession,
    outbox: Outbox,
    order: OrderRef,
    *,
    source: str,
    target: str,
    text: str,
    locale: str,
) -> None:
    deal_id = order.deal_id_b24
    repo = CrmRepository(session)
    deal = await repo.deal(deal_id)
    result = outcome(source, target)
    if deal is not None and deal.deleted_at is not None:
        # Gone from Bitrix24: neither a comment nor a stage can land there.
        _skipped(session, order, deal_id, result, "deal_deleted")
        return
    timeline_comment(session, outbox, deal_id, text)
    if result is None:
        return
    if deal is None or deal.closed:
        # Unknown: no telling which pipeline's stage to set.  Closed already
        # (by a person, say): b24mw does not overrule them.
        _skipped(session, order, deal_id, result, "deal_unknown" if deal is None else "deal_closed")
        return
    stage = await target_stage(repo, deal.category_id, result, outbox.crm_lost_stages)
    outbox.b24_call(
        session,
        "crm.item.update",
        {"entityTypeId": 2, "id": deal_id, "fields": {"stageId": stage}},
        ordering_key=deal_key(deal_id),
        on_result=CLOSED_HOOK,
        on_dead=REFUSED_HOOK,
        context={
            "deal_id": deal_id,
            "stage": stage,
            "outcome": result,
            "order": asdict(order),
            "locale": locale,
            "event_sinks": outbox.event_sinks,
        },
    )


def _skipped(
    session: AsyncSession, order: OrderRef, deal_id: int, result: str | None, reason: str
) -> None:
    log_exchange(
        session,
        direction=LogDirection.OUT,
        system="b24",
        endpoint="crm.item.update",
        status="skipped",
        resource_ref=f"crm/deals/{deal_id}",
        request={"order": f"{order.kind}:{order.id}", "outcome": result},
        error_code=reason,
    )
