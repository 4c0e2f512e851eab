"""Report rows as the renderings see them, and the running totals.

A row is the tuple ``repository.report_batches`` reads: ``order_id, kind,
courier_id, courier_name, status, title, customer_name, total_amount,
currency_code, created_at, updated_at, duration_tenths`` — except in CSV rows,
whose last column is the duration as the file writes it (``52.5``), so a row
is its line.  In CSV and JSON rows
the amount and the timestamps are already strings; in typed rows (the
workbook) they are a decimal and datetimes.  Every rendering adds its rows to
one ``Totals`` while they stream, so the TOTALS line always adds up to the
rows above it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

ZERO = Decimal("0.00")
AMOUNT, CURRENCY, TENTHS = 7, 8, 11
# A report row's columns by name, in every rendering's order.
REPORT_COLUMNS = (
    "order_id",
    "kind",
    "courier_id",
    "courier_name",
    "status",
    "title",
    "customer_name",
    "total_amount",
    "currency_code",
    "created_at",
    "updated_at",
    "duration_min",
)


def money(value: Decimal) -> str:
    return f"{value:.2f}"


def minutes(tenths: int | None) -> float | None:
    return None if tenths is None else tenths / 10


@dataclass(slots=True)
class Totals:
    written: bool = False  # CSV rows: the duration is text, "52.5"
    orders: int = 0
    amount: Decimal = ZERO
    duration_tenths: int = 0
    by_currency: dict[str, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        self.orders += len(rows)
        by_currency, written = self.by_currency, self.written
        tenths = 0
        for row in rows:
            by_currency[row[CURRENCY]] += Decimal(row[AMOUNT])
            duration = row[TENTHS]
            if written:
                # One decimal always: "52.5" is 525 tenths.
                tenths += int(duration.replace(".", "")) if duration else 0
            elif duration is not None:
                tenths += duration
        self.duration_tenths += tenths
        self.amount = sum(by_currency.values(), ZERO)

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
