"""``GET /api/v1/ww/export/kmp4``: the status codes, the CSV 1C reads, and
the cursor: every change delivered, none twice, even when orders change
between pages or while a page is read."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import random
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from b24mw.kit.db import Database
from b24mw.models.enums import OrderStatus
from b24mw.reports import kmp4
from b24mw.reports.schemas import Kmp4Page
from tests.reports.helpers import KMP4, T0, Seed, seed
from tests.support.auth import auth
from tests.support.orders import ORDERS, create_order, set_status

pytestmark = pytest.mark.usefixtures("couriers")

SPEC_CODES = {
    "NEW": "new",
    "PICKING": "picking",
    "READY": "ready",
    "PICKED_UP": "picked_up",
    "ON_ROUTE": "courier_on_route",
    "DELIVERED": "delivered",
    "CASH_RETURNED": "cash_returned",
    "DONE": "completed",
    "REFUSED": "cancelled_by_manager",
    "FAILED": "failed",
}
HEADER = (
    "order_id,title,customer_name,status_code,total_amount,currency_code,courier_id,notes,"
    "created_at,updated_at"
)
TABLE = {"instant": "instant_orders", "delivery": "orders"}


def test_every_status_has_its_spec_code_and_codes_are_distinct() -> None:
    assert set(kmp4.STATUS_CODES) == set(OrderStatus)
    assert {s.value: c for s, c in kmp4.STATUS_CODES.items()} == SPEC_CODES
    assert len(set(kmp4.STATUS_CODES.values())) == len(OrderStatus)


async def page(
    client: httpx.AsyncClient, after: str | None = None, limit: int = 1000, role: str = "1c"
) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit}
    if after is not None:
        params["after"] = after
    response = await client.get(KMP4, params=params, headers=auth(role, "erp"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    Kmp4Page.model_validate(body)
    assert response.headers["x-next-cursor"] == body["next_cursor"]
    assert response.headers["x-total-count"] == str(body["total"])
    return body


async def test_csv_starts_with_the_kmp4_line_and_header(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed(
        db,
        Seed("instant", "c1", "DONE", T0, "Case, black", amount="490.50", notes="=cmd|x"),
        Seed("delivery", "c2", "REFUSED", T0, 'TV "big"', notes="two\nlines"),
    )
    response = await client.get(KMP4, params={"format": "csv"}, headers=auth("admin", "boss"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(b"#KMP4_DELIVERY_REPORT,v1\r\n" + HEADER.encode() + b"\r\n")
    rows = list(csv.reader(io.StringIO(response.content.decode(), newline="")))[2:]
    by_id = {r[0]: r for r in rows}
    ids = sorted(by_id)
    assert [i.split("-")[0] for i in ids] == ["dl", "ww"]
    instant, delivery = by_id[ids[1]], by_id[ids[0]]
    assert instant[1:8] == [
        "Case, black",
        "Anna Smirnova",
        "completed",
        "490.50",
        "RUB",
        "c1",
        "'=cmd|x",
    ]
    assert instant[8] == "2025-03-01T09:00:00.000000Z"
    assert delivery[1] == 'TV "big"' and delivery[3] == "cancelled_by_manager"
    assert delivery[7] == "two\nlines"


@pytest.mark.parametrize(("role", "status"), [("courier", 403), ("1c", 200), ("admin", 200)])
async def test_roles(client: httpx.AsyncClient, role: str, status: int) -> None:
    response = await client.get(KMP4, headers=auth(role, "c1"))
    assert response.status_code == status


async def test_pages_then_only_what_changed(client: httpx.AsyncClient, db: Database) -> None:
    await seed(
        db, *(Seed("instant" if n % 2 else "delivery", "c1", title=f"o{n}") for n in range(7))
    )
    seen, totals, cursor = [], [], None
    while True:
        body = await page(client, cursor, limit=3)
        seen += [i["order_id"] for i in body["items"]]
        totals.append(body["total"])
        cursor = body["next_cursor"]
        if not body["has_more"]:
            break
    assert totals == [7, 4, 1]
    assert len(seen) == len(set(seen)) == 7
    again = await page(client, cursor)
    assert again["items"] == [] and again["next_cursor"] == cursor and again["total"] == 0

    # The next day: one order moves, one is created; only they come.
    order = await create_order(client, courier_id="c1")
    moved = (
        await set_status(client, f"{ORDERS}/{seen[0].split('-')[1]}", "READY")
        if seen[0].startswith("ww")
        else None
    )
    body = await page(client, cursor)
    expected = [f"ww-{order['id']}"] + ([seen[0]] if moved is not None else [])
    assert sorted(i["order_id"] for i in body["items"]) == sorted(expected)


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "azE",
        kmp4.Position(5, "parcel", 1).encode(),
        "a" * 201,
        base64.urlsafe_b64encode(b"k9.5.instant.1").decode(),
        base64.urlsafe_b64encode(b"k1.5.instant.0").decode(),
    ],
)
async def test_a_cursor_not_handed_out_is_422(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get(KMP4, params={"after": cursor}, headers=auth("1c", "erp"))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "query.after"


async def bump(db: Database, kind: str, order_id: int, status: str = "READY") -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE {TABLE[kind]} SET status = :s, version = version + 1 WHERE id = :id"),
            {"s": status, "id": order_id},
        )


class Reader:
    """1C paging the feed and remembering what it got."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.cursor: str | None = None
        self.seen: list[tuple[str, int]] = []  # (order_id, version)

    async def next_page(self, limit: int) -> bool:
        body = await page(self.client, self.cursor, limit=limit)
        self.seen += [(i["order_id"], i["version"]) for i in body["items"]]
        self.cursor = body["next_cursor"]
        return bool(body["has_more"])

    async def drain(self, limit: int = 1000) -> None:
        while await self.next_page(limit):
            pass

    def latest(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for order_id, version in self.seen:
            out[order_id] = max(version, out.get(order_id, 0))
        return out


async def versions(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT 'ww-' || id, version FROM instant_orders"
                    " UNION ALL SELECT 'dl-' || id, version FROM orders"
                )
            )
        ).all()
    return {r[0]: int(r[1]) for r in rows}


def assert_delivered_once_each(reader: Reader, final: dict[str, int]) -> None:
    assert len(reader.seen) == len(set(reader.seen)), "a change was delivered twice"
    assert reader.latest() == final, "a change was never delivered"


async def test_writes_between_pages(client: httpx.AsyncClient, db: Database) -> None:
    kinds = ["instant", "delivery"] * 5
    ids = await seed(db, *(Seed(k, "c1", title=f"o{n}") for n, k in enumerate(kinds)))
    reader = Reader(client)
    await reader.next_page(3)
    delivered = {order_id for order_id, _ in reader.seen}
    first = next(
        i for k, i in zip(kinds, ids, strict=True) if f"{kmp4.ID_PREFIX[k]}-{i}" in delivered
    )
    first_kind = "instant" if f"ww-{first}" in delivered else "delivery"
    await bump(db, first_kind, first)  # already delivered: must come again
    await bump(db, kinds[-1], ids[-1])  # not yet delivered: must come once, new
    await seed(db, Seed("delivery", "c2", title="new"))
    await reader.next_page(3)
    await bump(db, first_kind, first, "PICKED_UP")
    await reader.drain(3)
    assert_delivered_once_each(reader, await versions(db))
    assert (f"{kmp4.ID_PREFIX[first_kind]}-{first}", 3) in reader.seen


async def test_a_late_commit_is_not_skipped(
    client: httpx.AsyncClient, db: Database, backend: str
) -> None:
    early, late = await seed(db, Seed(title="early"), Seed(title="late"))
    reader = Reader(client)
    await reader.drain()
    async with db.engine.connect() as slow:
        # The slow transaction writes first and commits last.
        await slow.execute(
            text("UPDATE instant_orders SET version = version + 1 WHERE id = :id"), {"id": early}
        )
        quick = asyncio.create_task(bump(db, "instant", late))
        if backend == "postgresql":
            await quick  # committed, above a transaction still running
        else:
            # SQLite writers take turns: the quick one waits for the slow one,
            # which is why commit order is counter order there.
            await asyncio.sleep(0.3)
            assert not quick.done()
        body = await page(client, reader.cursor)
        assert body["items"] == [] and body["total"] == 0
        await slow.commit()
    await quick
    body = await page(client, reader.cursor)
    assert [(i["order_id"], i["version"]) for i in body["items"]] == [
        (f"ww-{early}", 2),
        (f"ww-{late}", 2),
    ]


async def test_writes_committing_while_pages_are_read(
    client: httpx.AsyncClient, db: Database
) -> None:
    kinds = ["instant", "delivery"] * 15
    ids = await seed(db, *(Seed(k, "c1", title=f"o{n}") for n, k in enumerate(kinds)))
    orders = list(zip(kinds, ids, strict=True))
    reader = Reader(client)
    stop = asyncio.Event()

    async def writer(seed_no: int) -> None:
        rnd = random.Random(seed_no)
        while not stop.is_set():
            kind, order_id = rnd.choice(orders)
            async with db.engine.connect() as conn:
                await conn.execute(
                    text(f"UPDATE {TABLE[kind]} SET version = version + 1 WHERE id = :id"),
                    {"id": order_id},
                )
                # Commit a moment later, out of order with the other writers,
                # while the reader is paging.
                await asyncio.sleep(rnd.uniform(0, 0.02))
                await conn.commit()

    async def reading() -> None:
        while not stop.is_set():
            await reader.next_page(4)

    writers = [asyncio.create_task(writer(n)) for n in range(3)]
    pager = asyncio.create_task(reading())
    await asyncio.sleep(2.0)
    stop.set()
    await asyncio.gather(*writers, pager)
    await reader.drain(4)
    assert len(reader.seen) > len(orders)
    assert_delivered_once_each(reader, await versions(db))
