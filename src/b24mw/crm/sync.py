"""Sync in: deals and leads read from Bitrix24 into the mirror.

Events (``ONCRMDEAL*``/``ONCRMLEAD*``) carry the id only and are never
re-sent (BITRIX24.md §6): they arrive through the webhook endpoint and the
durable inbox like task events, and the inbox worker reads each item
(``crm.item.get`` in its shared ``batch``) and hands the answer here.
Reconciliation scans for what an event may have missed.  Either path
upserts by Bitrix24's ``updatedTime``: an older read never overwrites a
newer one, so the two may race freely.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.crm.repository import CrmRepository, Mirror
from b24mw.history.repository import log_exchange
from b24mw.models.base import utcnow
from b24mw.models.crm import CrmDeal, CrmLead
from b24mw.models.enums import LogDirection
from b24mw.webhooks.events import as_int

log = structlog.get_logger("b24mw.crm")

DEAL = 2
LEAD = 1
MODELS: dict[int, Mirror] = {DEAL: CrmDeal, LEAD: CrmLead}
ENTITY_NAMES = {DEAL: "deal", LEAD: "lead"}
# What a numeric(12,2) column holds; a larger amount is kept in ``raw``.
MAX_AMOUNT = Decimal("9999999999.99")


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _amount(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value if value is not None else 0)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return Decimal("0.00")
    if not amount.is_finite():
        return Decimal("0.00")
    return min(max(amount, -MAX_AMOUNT), MAX_AMOUNT)


def _id_or_none(value: Any) -> int | None:
    number = as_int(value)
    return number if number else None


def _semantic(value: Any) -> str:
    return value if value in ("P", "S", "F") else "P"


def item_values(entity_type_id: int, item: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """The mirror row of a ``crm.item`` answer; ``None`` when it is no item."""
    item_id = as_int(item.get("id"))
    updated = parse_time(item.get("updatedTime"))
    if not item_id or updated is None:
        return None
    currency = item.get("currencyId")
    semantic = _semantic(item.get("stageSemanticId"))
    values: dict[str, Any] = {
        "id": item_id,
        "title": str(item.get("title") or "")[:255],
        "amount": _amount(item.get("opportunity")),
        "currency_code": currency if isinstance(currency, str) and len(currency) == 3 else "RUB",
        "contact_id_b24": _id_or_none(item.get("contactId")),
        "company_id_b24": _id_or_none(item.get("companyId")),
        "assigned_by_id": _id_or_none(item.get("assignedById")),
        "b24_updated_at": updated,
        "raw": item,
        "read_at": now,
        "deleted_at": None,
        "created_at": now,
        "updated_at": now,
    }
    stage = str(item.get("stageId") or "")[:64]
    if entity_type_id == DEAL:
        values.update(
            category_id=as_int(item.get("categoryId")) or 0,
            stage_id=stage,
            stage_semantic=semantic,
            lead_id_b24=_id_or_none(item.get("leadId")),
            closed=item.get("closed") == "Y" or semantic in ("S", "F"),
        )
    else:
        values.update(status_id=stage, status_semantic=semantic, closed=semantic in ("S", "F"))
    return values


def item_get(entity_type_id: int, item_id: int) -> tuple[str, dict[str, Any]]:
    return "crm.item.get", {"entityTypeId": entity_type_id, "id": item_id}


async def store_item(
    session: AsyncSession, entity_type_id: int, item: dict[str, Any]
) -> tuple[bool, dict[str, Any] | None]:
    """Upsert one read; (written, values)."""
    values = item_values(entity_type_id, item, utcnow())
    if values is None:
        return False, None
    written = await CrmRepository(session).upsert(MODELS[entity_type_id], values)
    return written, values


async def record_gone(session: AsyncSession, entity_type_id: int, item_id: int) -> bool:
    """Deleted in Bitrix24: recorded on the mirror row, nothing else touched
    (orders that point at the deal keep pointing at it)."""
    gone = await CrmRepository(session).mark_deleted(MODELS[entity_type_id], item_id, utcnow())
    if gone:
        log_exchange(
            session,
            direction=LogDirection.IN,
            system="b24",
            endpoint=f"crm.{ENTITY_NAMES[entity_type_id]}.deleted",
            status="ok",
            resource_ref=f"crm/{ENTITY_NAMES[entity_type_id]}s/{item_id}",
        )
    return gone


def is_echo(item: dict[str, Any], self_user_id: int | None) -> bool:
    """Our own update coming back as an event: changed last by our user."""
    return self_user_id is not None and as_int(item.get("updatedBy")) == self_user_id
