"""A report row: what the database gives, its duration, and the running totals.

Every rendering consumes the same ``ReportRow`` batches and one ``Totals``
accumulated while they stream, so the TOTALS line always adds up to the rows
above it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from b24mw.reports.schemas import FINAL_STATUSES

ZERO = Decimal("0.00")


def rfc3339(value: datetime) -> str:
    """As the API writes timestamps everywhere (``kit.schemas.UtcOut``), from
    a UTC value; ``isoformat`` is several times cheaper than ``strftime``."""
    return value.isoformat(timespec="microseconds")[:26] + "Z"


def money(value: Decimal) -> str:
    return f"{value:.2f}"


def duration_tenths(
    status: str,
    created_at: datetime,
    updated_at: datetime,
    first_event_at: datetime | None,
    final_at: datetime | None,
) -> int | None:
    """Tenths of a minute from the order's first history event to its final
    status; None while it is open.

    The history is the source; when it is gone (archived after the retention
    period) the order's own timestamps stand in: it was created in the same
    transaction as its first event, and a final order is not changed again.
    """
    if status not in FINAL_STATUSES:
        return None
    started = first_event_at or created_at
    ended = final_at or updated_at
    return max(0, round((ended - started).total_seconds() / 6))


@dataclass(slots=True)
class ReportRow:
    order_id: int
    kind: str
    courier_id: str | None
    courier_name: str | None
    status: str
    title: str
    customer_name: str
    total_amount: Decimal
    currency_code: str
    created_at: datetime
    updated_at: datetime
    duration_tenths: int | None

    @property
    def duration_min(self) -> float | None:
        return None if self.duration_tenths is None else self.duration_tenths / 10


def report_rows(raw: Sequence[Any]) -> list[ReportRow]:
    """Rows of ``repository.report_batches`` (columns in its order)."""
    return [
        ReportRow(
            order_id,
            kind,
            courier_id,
            courier_name,
            status,
            title,
            customer_name,
            amount,
            currency,
            created,
            updated,
            duration_tenths(status, created, updated, first, final),
        )
        for (
            order_id,
            kind,
            courier_id,
            courier_name,
            status,
            title,
            customer_name,
            amount,
            currency,
            created,
            updated,
            first,
            final,
        ) in raw
    ]


@dataclass(slots=True)
class Totals:
    orders: int = 0
    amount: Decimal = ZERO
    duration_tenths: int = 0
    by_currency: dict[str, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))

    def add(self, rows: Sequence[ReportRow]) -> None:
        self.orders += len(rows)
        for row in rows:
            self.amount += row.total_amount
            self.by_currency[row.currency_code] += row.total_amount
            if row.duration_tenths is not None:
                self.duration_tenths += row.duration_tenths

    @property
    def duration_min(self) -> float:
        return self.duration_tenths / 10

    @property
    def currency_label(self) -> str:
        """The one currency, or the codes joined with ``+`` when rows mix them."""
        return "+".join(sorted(self.by_currency))

    def as_json(self) -> dict[str, Any]:
        return {
            "total_orders": self.orders,
            "total_amount": money(self.amount),
            "total_duration_min": self.duration_min,
            "amounts_by_currency": {k: money(v) for k, v in sorted(self.by_currency.items())},
        }
