"""Every list pages by cursor through the API, on both databases (issue 19):
a walk by ``next_cursor`` gives the rows of one page-mode answer, in its
order, each once, including rows whose sort times tie (the id decides); each
list's cursor is refused by the others (422 naming ``cursor``).

``tests/kit/test_pagination.py`` covers concurrent inserts, totals and bad
cursors on one list; this covers every list's own sort key and codec (a
return's UUID, a courier's text id, an event's ``ts``, a dead job's
``finished_at``)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from b24mw.kit.db import Database
from b24mw.models.couriers import Courier
from b24mw.models.crm import CrmDeal, CrmLead
from b24mw.models.history import HistoryEntry
from b24mw.models.ops import OutboxJob
from b24mw.models.orders import Delivery
from b24mw.models.returns import Return
from tests.support.auth import auth
from tests.support.orders import (
    COURIERS,
    DELIVERIES,
    ORDERS,
    add_couriers,
    create_delivery,
    create_order,
)
from tests.support.problems import assert_problem

START = datetime(2026, 3, 1, tzinfo=UTC)
ROWS = 7


def tied(n: int) -> datetime:
    """Two rows a minute: pairs tie, and pages of three split some pairs."""
    return START + timedelta(minutes=n // 2)


async def seed_returns(db: Database, client: httpx.AsyncClient) -> str:
    async with db.unit_of_work() as session:
        for n in range(ROWS):
            at = tied(n)
            session.add(
                Return(
                    id=uuid.uuid4(),
                    source="widget",
                    courier_id="c1",
                    status="pending",
                    created_at=at,
                    updated_at=at,
                )
            )
    return "/api/v1/returns"


async def seed_orders(db: Database, client: httpx.AsyncClient) -> str:
    for _ in range(ROWS):
        await create_order(client, courier_id="c1")
    return ORDERS


async def seed_deliveries(db: Database, client: httpx.AsyncClient) -> str:
    async with db.unit_of_work() as session:
        for n in range(ROWS):
            at = tied(n)
            session.add(
                Delivery(
                    external_id_1c=f"D-{n}",
                    courier_id="c1",
                    title=f"Delivery {n}",
                    customer_name="Oleg",
                    address="Moscow",
                    cod_amount=Decimal(0),
                    delivery_price=Decimal(0),
                    total_amount=Decimal(100),
                    created_at=at,
                    updated_at=at,
                )
            )
    return DELIVERIES


async def seed_couriers(db: Database, client: httpx.AsyncClient) -> str:
    async with db.unit_of_work() as session:
        for n in range(ROWS):
            session.add(Courier(id=f"k{n:02}", display_name=f"Courier {n}", is_active=True))
    return COURIERS


def events(**owner: Any) -> list[HistoryEntry]:
    return [
        HistoryEntry(ts=tied(n), type="comment", payload_json={"n": n}, **owner)
        for n in range(ROWS)
    ]


async def seed_order_events(db: Database, client: httpx.AsyncClient) -> str:
    order = await create_order(client, courier_id="c1")
    async with db.unit_of_work() as session:
        session.add_all(events(instant_order_id=order["id"]))
    return f"{ORDERS}/{order['id']}/events"


async def seed_delivery_events(db: Database, client: httpx.AsyncClient) -> str:
    delivery = await create_delivery(client)
    async with db.unit_of_work() as session:
        session.add_all(events(order_id=delivery["id"]))
    return f"{DELIVERIES}/{delivery['id']}/events"


async def seed_dead_letters(db: Database, client: httpx.AsyncClient) -> str:
    async with db.unit_of_work() as session:
        for n in range(ROWS):
            session.add(
                OutboxJob(
                    kind="b24.call",
                    payload={"n": n},
                    status="dead",
                    attempts=1,
                    last_error="boom",
                    finished_at=tied(n),
                )
            )
    return "/api/v1/admin/dlq"


def mirrored(n: int) -> dict[str, Any]:
    """A deal's or lead's mirror fields, modified times tied in pairs."""
    return {
        "id": 500 + n,
        "title": f"Deal {n}",
        "amount": Decimal(100),
        "currency_code": "RUB",
        "b24_updated_at": tied(n),
        "raw": {},
        "read_at": tied(n),
    }


async def seed_deals(db: Database, client: httpx.AsyncClient) -> str:
    async with db.unit_of_work() as session:
        session.add_all(CrmDeal(stage_id="NEW", **mirrored(n)) for n in range(ROWS))
    return "/api/v1/crm/deals"


async def seed_leads(db: Database, client: httpx.AsyncClient) -> str:
    async with db.unit_of_work() as session:
        session.add_all(CrmLead(status_id="NEW", **mirrored(n)) for n in range(ROWS))
    return "/api/v1/crm/leads"


Seed = Callable[[Database, httpx.AsyncClient], Awaitable[str]]
LISTS: dict[str, Seed] = {
    "returns": seed_returns,
    "orders": seed_orders,
    "deliveries": seed_deliveries,
    "couriers": seed_couriers,
    "order events": seed_order_events,
    "delivery events": seed_delivery_events,
    "dead letters": seed_dead_letters,
    "deals": seed_deals,
    "leads": seed_leads,
}


async def get(client: httpx.AsyncClient, url: str, **params: Any) -> dict[str, Any]:
    response = await client.get(url, params=params, headers=auth("admin"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("name", LISTS)
async def test_a_cursor_walk_of_every_list_gives_its_rows_once_in_order(
    client: httpx.AsyncClient, db: Database, name: str
) -> None:
    await add_couriers(db)
    url = await LISTS[name](db, client)
    whole = await get(client, url, page_size=100)
    expected = [item["id"] for item in whole["items"]]
    assert len(expected) >= ROWS and not whole["has_next"]
    page = await get(client, url, page_size=3)
    seen = [item["id"] for item in page["items"]]
    while page["has_next"]:
        page = await get(client, url, page_size=3, cursor=page["next_cursor"])
        assert page["page"] is None
        seen += [item["id"] for item in page["items"]]
    assert seen == expected
    assert page["next_cursor"] is None


async def test_a_lists_cursor_is_refused_by_every_other_list(
    client: httpx.AsyncClient, db: Database
) -> None:
    await add_couriers(db)
    urls = {name: await seed(db, client) for name, seed in LISTS.items()}
    cursors = {
        name: (await get(client, url, page_size=1))["next_cursor"] for name, url in urls.items()
    }
    for name, url in urls.items():
        for other, cursor in cursors.items():
            if other == name:
                continue
            response = await client.get(url, params={"cursor": cursor}, headers=auth("admin"))
            problem = assert_problem(response, 422)
            assert [e["field"] for e in problem["errors"]] == ["query.cursor"], (name, other)
