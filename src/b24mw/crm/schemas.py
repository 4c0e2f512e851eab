"""The CRM mirror as the API shows it (read-only: Bitrix24 owns deals and leads)."""

from __future__ import annotations

from pydantic import Field

from b24mw.deliveries.schemas import DeliveryRead
from b24mw.kit.schemas import MoneyOut, ReadModel, UtcOut
from b24mw.ww.schemas import OrderRead


class DealRead(ReadModel):
    id: int = Field(description="Bitrix24 deal id")
    title: str
    category_id: int = Field(description="pipeline (deal category); 0 is the default one")
    stage_id: str = Field(description="stage as Bitrix24 last showed it, e.g. NEW, C1:WON")
    stage_semantic: str = Field(description="P in process, S won, F lost")
    amount: MoneyOut = Field(description="the deal's opportunity")
    currency_code: str
    contact_id_b24: int | None
    company_id_b24: int | None
    assigned_by_id: int | None = Field(description="responsible Bitrix24 user")
    lead_id_b24: int | None = Field(description="the lead the deal came from")
    closed: bool
    b24_updated_at: UtcOut = Field(description="Bitrix24's modified time of what is mirrored")
    read_at: UtcOut = Field(description="when b24mw last read it")
    deleted_at: UtcOut | None = Field(description="deleted in Bitrix24 (recorded, kept)")
    b24mw_stage_id: str | None = Field(
        description="the stage b24mw set when closing it; differs from stage_id when "
        "someone or an automation rule moved it since"
    )
    b24mw_stage_at: UtcOut | None


class DealDetail(DealRead):
    deliveries: list[DeliveryRead] = Field(description="deliveries linked to the deal")
    orders: list[OrderRead] = Field(description="Walking Warehouse orders linked to the deal")


class LeadRead(ReadModel):
    id: int = Field(description="Bitrix24 lead id")
    title: str
    status_id: str = Field(description="NEW, IN_PROCESS, PROCESSED, JUNK, CONVERTED...")
    status_semantic: str = Field(description="P in process, S converted, F junk")
    amount: MoneyOut
    currency_code: str
    contact_id_b24: int | None
    company_id_b24: int | None
    assigned_by_id: int | None
    closed: bool
    b24_updated_at: UtcOut
    read_at: UtcOut
    deleted_at: UtcOut | None


class LeadDetail(LeadRead):
    deal_ids_b24: list[int] = Field(description="deals whose leadId is this lead")
