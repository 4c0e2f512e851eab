"""The CRM mirror as the API shows it (read-only: Bitrix24 owns deals and leads)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from b24mw.deliveries.schemas import DeliveryRead
from b24mw.kit.pagination import CursorKey
from b24mw.kit.schemas import MoneyOut, ReadModel, UtcOut
from b24mw.ww.schemas import OrderRead

# The lists' cursors: (Bitrix24's modified time, id) of the last row.
DEAL_CURSOR = CursorKey("crm-deals", (datetime, int))
LEAD_CURSOR = CursorKey("crm-leads", (datetime, int))


class DealRead(ReadModel):
    id: int = Field(description="Bitrix24 deal id")
    title: str = Field(description="the deal's title in Bitrix24")
    category_id: int = Field(description="pipeline (deal category); 0 is the default one")
    stage_id: str = Field(description="stage as Bitrix24 last showed it, e.g. NEW, C1:WON")
    stage_semantic: str = Field(description="P in process, S won, F lost")
    amount: MoneyOut = Field(description="the deal's opportunity")
    currency_code: str = Field(description="ISO 4217 currency of the amount")
    contact_id_b24: int | None = Field(description="the deal's (first) contact")
    company_id_b24: int | None = Field(description="the deal's company")
    assigned_by_id: int | None = Field(description="responsible Bitrix24 user")
    lead_id_b24: int | None = Field(description="the lead the deal came from")
    closed: bool = Field(description="in a final stage (won or lost)")
    b24_updated_at: UtcOut = Field(description="Bitrix24's modified time of what is mirrored")
    read_at: UtcOut = Field(description="when b24mw last read it")
    deleted_at: UtcOut | None = Field(description="deleted in Bitrix24 (recorded, kept)")
    b24mw_stage_id: str | None = Field(
        description="the stage b24mw set when closing it; differs from stage_id when "
        "someone or an automation rule moved it since"
    )
    b24mw_stage_at: UtcOut | None = Field(description="when b24mw set b24mw_stage_id")


class DealDetail(DealRead):
    deliveries: list[DeliveryRead] = Field(description="deliveries linked to the deal")
    orders: list[OrderRead] = Field(description="Walking Warehouse orders linked to the deal")


class LeadRead(ReadModel):
    id: int = Field(description="Bitrix24 lead id")
    title: str = Field(description="the lead's title in Bitrix24")
    status_id: str = Field(description="NEW, IN_PROCESS, PROCESSED, JUNK, CONVERTED...")
    status_semantic: str = Field(description="P in process, S converted, F junk")
    amount: MoneyOut = Field(description="the lead's opportunity")
    currency_code: str = Field(description="ISO 4217 currency of the amount")
    contact_id_b24: int | None = Field(description="the lead's contact")
    company_id_b24: int | None = Field(description="the lead's company")
    assigned_by_id: int | None = Field(description="responsible Bitrix24 user")
    closed: bool = Field(description="converted or junk")
    b24_updated_at: UtcOut = Field(description="Bitrix24's modified time of what is mirrored")
    read_at: UtcOut = Field(description="when b24mw last read it")
    deleted_at: UtcOut | None = Field(description="deleted in Bitrix24 (recorded, kept)")


class LeadDetail(LeadRead):
    deal_ids_b24: list[int] = Field(description="deals whose leadId is this lead")
