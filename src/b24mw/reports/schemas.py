"""What the report and the export take and answer.

The rows are rendered without Pydantic (a year of orders is a million rows);
these models describe the JSON shapes for OpenAPI, and the tests validate the
answers against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from b24mw.kit.schemas import MoneyOut, UtcOut
from b24mw.models.enums import OrderStatus


class ReportKind(StrEnum):
    INSTANT = "instant"  # Walking Warehouse orders (instant_orders)
    DELIVERY = "delivery"  # 1C deliveries (orders)


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


JSON_TYPE = "application/json"
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

FINAL_STATUSES = (OrderStatus.DONE, OrderStatus.REFUSED)


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """A report's filters, resolved: ``created_before`` is exclusive (an
    inclusive ``created_to`` date means through the end of that day)."""

    statuses: tuple[str, ...] = ()
    courier_id: str | None = None
    kinds: tuple[ReportKind, ...] = (ReportKind.INSTANT, ReportKind.DELIVERY)
    created_from: datetime | None = None
    created_before: datetime | None = None
    # How the range is named in the file name: dates, or start/now.
    label_from: str = "start"
    label_to: str = "now"

    @property
    def filename_stem(self) -> str:
        return f"deliveries-{self.label_from}-{self.label_to}"


class ReportRowRead(BaseModel):
    order_id: int
    kind: ReportKind
    courier_id: str | None
    courier_name: str | None
    status: OrderStatus
    title: str
    customer_name: str
    total_amount: MoneyOut
    currency_code: str
    created_at: UtcOut
    updated_at: UtcOut
    duration_min: float | None = Field(
        description="minutes from the order's first history event to its final status "
        "(DONE/REFUSED), one decimal; null while the order is open"
    )


class ReportTotals(BaseModel):
    total_orders: int
    total_amount: MoneyOut = Field(description="sum of total_amount over the rows")
    total_duration_min: float = Field(description="sum of the rows' duration_min")
    amounts_by_currency: dict[str, MoneyOut] = Field(
        description="total_amount per currency (one entry when every row shares one)"
    )


class DeliveriesReport(BaseModel):
    items: list[ReportRowRead]
    totals: ReportTotals


class Kmp4Order(BaseModel):
    order_id: str = Field(
        description="`ww-<id>` for a Walking Warehouse order, `dl-<id>` for a 1C delivery"
    )
    title: str
    customer_name: str
    status_code: str
    total_amount: MoneyOut
    currency_code: str
    courier_id: str | None
    notes: str | None
    created_at: UtcOut
    updated_at: UtcOut
    kind: ReportKind
    id: int
    external_id_1c: str | None = Field(description="1C's own document id (deliveries)")
    version: int = Field(description="grows with every change of the order")


class Kmp4Page(BaseModel):
    items: list[Kmp4Order]
    total: int = Field(description="changed orders waiting after `after`, this page included")
    next_cursor: str = Field(
        description="pass as `after` to continue; store it to resume with the next change"
    )
    has_more: bool = Field(description="more changes are waiting: fetch the next page now")
