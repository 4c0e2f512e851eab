"""Seeding orders of both kinds with a known history, straight into the tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert

from b24mw.kit.db import Database
from b24mw.models.base import table_of
from b24mw.models.history import HistoryEntry
from b24mw.models.orders import Delivery, InstantOrder

REPORT = "/api/v1/ww/report/deliveries"
KMP4 = "/api/v1/ww/export/kmp4"
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class Seed:
    kind: str = "instant"
    courier_id: str | None = "c1"
    status: str = "NEW"
    created_at: datetime = T0
    title: str = "Order"
    customer_name: str = "Anna Smirnova"
    amount: str = "100.00"
    currency: str = "RUB"
    notes: str | None = None
    # (minutes after created_at, status) of each status event; the first is
    # the creation (NEW) unless ``history`` is given empty.
    history: list[tuple[float, str]] = field(default_factory=lambda: [(0, "NEW")])
    updated_after_min: float = 0


async def seed(db: Database, *orders: Seed) -> list[int]:
    """Insert ``orders`` (and their status history); their ids in order."""
    ids = []
    async with db.unit_of_work() as session:
        for n, o in enumerate(orders):
            table = table_of(InstantOrder if o.kind == "instant" else Delivery)
            last = max([m for m, _ in o.history] + [o.updated_after_min])
            values: dict[str, Any] = {
                "courier_id": o.courier_id,
                "title": o.title,
                "customer_name": o.customer_name,
                "status": o.status,
                "total_amount": Decimal(o.amount),
                "currency_code": o.currency,
                "notes": o.notes,
                "version": 1 + max(0, len(o.history) - 1),
                "created_at": o.created_at,
                "updated_at": o.created_at + timedelta(minutes=last),
            }
            if o.kind == "instant":
                values["origin"] = "api"
            else:
                values |= {
                    "external_id_1c": f"EXT-{n}-{o.created_at.timestamp()}-{o.title}"[:64],
                    "address": "Moscow",
                    "cod_amount": Decimal(o.amount),
                    "delivery_price": Decimal("0"),
                }
            result = await session.execute(insert(table).values(values).returning(table.c.id))
            order_id = int(result.scalar_one())
            ids.append(order_id)
            link = "instant_order_id" if o.kind == "instant" else "order_id"
            for minutes, status in o.history:
                await session.execute(
                    insert(table_of(HistoryEntry)).values(
                        ts=o.created_at + timedelta(minutes=minutes),
                        type="status",
                        status=status,
                        payload_json={},
                        **{link: order_id},
                    )
                )
    return ids
