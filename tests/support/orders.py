"""Test helpers shared by the order kinds: couriers, orders, outbox reads."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from b24mw.kit.db import Database
from b24mw.models.couriers import Courier
from b24mw.models.enums import OrderStatus as S
from b24mw.models.history import HistoryEntry, IntegrationLog
from b24mw.models.ops import OutboxJob
from tests.support.auth import auth

ORDERS = "/api/v1/ww/orders"
DELIVERIES = "/api/v1/deliveries"
COURIERS = "/api/v1/ww/couriers"

# A path through the matrix to every status, with the role allowed to make each move.
PATH_TO: dict[S, list[tuple[S, str]]] = {
    S.NEW: [],
    S.PICKING: [(S.PICKING, "admin")],
    S.READY: [(S.READY, "admin")],
    S.PICKED_UP: [(S.READY, "admin"), (S.PICKED_UP, "courier")],
    S.ON_ROUTE: [(S.READY, "admin"), (S.PICKED_UP, "courier"), (S.ON_ROUTE, "courier")],
    S.DELIVERED: [
        (S.READY, "admin"),
        (S.PICKED_UP, "courier"),
        (S.ON_ROUTE, "courier"),
        (S.DELIVERED, "courier"),
    ],
    S.CASH_RETURNED: [
        (S.READY, "admin"),
        (S.PICKED_UP, "courier"),
        (S.ON_ROUTE, "courier"),
        (S.DELIVERED, "courier"),
        (S.CASH_RETURNED, "courier"),
    ],
    S.DONE: [
        (S.READY, "admin"),
        (S.PICKED_UP, "courier"),
        (S.ON_ROUTE, "courier"),
        (S.DELIVERED, "courier"),
        (S.DONE, "courier"),
    ],
    S.REFUSED: [(S.REFUSED, "1c")],
    S.FAILED: [(S.READY, "admin"), (S.PICKED_UP, "courier"), (S.FAILED, "courier")],
}


# c1/c2 are Bitrix24 users 101/102, c3 has no Bitrix24 user, c9 is inactive.
COURIER_USERS: dict[str, int | None] = {"c1": 101, "c2": 102, "c3": None, "c9": 109}


async def add_couriers(db: Database) -> dict[str, int | None]:
    async with db.unit_of_work() as session:
        for cid, b24_user in COURIER_USERS.items():
            session.add(
                Courier(
                    id=cid,
                    display_name=f"Courier {cid}",
                    b24_user_id=b24_user,
                    is_active=cid != "c9",
                )
            )
    return COURIER_USERS


def order_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Phone case and charger",
        "customer_name": "Anna Smirnova",
        "client_phone": "8 (912) 345-67-89",
        "items": [
            {"sku": "CASE-1", "name": "Case", "qty": 2, "price": "490.50"},
            {"sku": "CHG-2", "name": "Charger", "qty": 1, "price": "1290"},
        ],
    }
    body.update(overrides)
    return body


def delivery_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id_1c": "ЗК-000123",
        "customer_name": "Oleg Ivanov",
        "address": "Moscow, Tverskaya 1, apt 5",
        "client_phone": "+7 912 000-11-22",
        "cod_amount": "1740.00",
        "delivery_price": "250",
        "courier_id": "c1",
        "items": [
            {"sku": "TV-1", "name": "Remote", "qty": 1, "price": "990"},
            {"sku": "BAT-2", "name": "Battery", "qty": 2, "price": "250.00"},
        ],
    }
    body.update(overrides)
    return body


async def _created(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(url, headers=headers, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def create_order(
    client: httpx.AsyncClient, role: str = "admin", sub: str = "boss", **overrides: Any
) -> dict[str, Any]:
    return await _created(client, ORDERS, auth(role, sub), order_body(**overrides))


async def create_delivery(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    return await _created(client, DELIVERIES, auth("1c", "erp"), delivery_body(**overrides))


async def set_status(
    client: httpx.AsyncClient,
    url: str,
    status: S | str,
    role: str = "admin",
    sub: str = "boss",
    **extra: Any,
) -> httpx.Response:
    return await client.post(
        f"{url}/status", headers=auth(role, sub), json={"status": str(status), **extra}
    )


async def walk_to(client: httpx.AsyncClient, url: str, target: S, courier: str = "c1") -> None:
    for status, role in PATH_TO[target]:
        sub = courier if role == "courier" else "boss"
        response = await set_status(client, url, status, role, sub)
        assert response.status_code == 200, response.text


async def jobs(db: Database, *, after_id: int = 0) -> list[OutboxJob]:
    async with db.reader() as session:
        stmt = select(OutboxJob).where(OutboxJob.id > after_id).order_by(OutboxJob.id)
        return list((await session.execute(stmt)).scalars())


async def last_job_id(db: Database) -> int:
    rows = await jobs(db)
    return rows[-1].id if rows else 0


def b24_calls(rows: list[OutboxJob]) -> list[tuple[str, dict[str, Any], str | None]]:
    """(method, params without the comment's marker, ordering key) per Bitrix24 job."""
    out = []
    for job in rows:
        if job.kind != "b24.call":
            continue
        params = dict(job.payload["params"])
        if "FIELDS" in params:
            fields = dict(params["FIELDS"])
            fields["POST_MESSAGE"] = fields["POST_MESSAGE"].rsplit("\n[b24mw:", 1)[0]
            params["FIELDS"] = fields
        out.append((job.payload["method"], params, job.ordering_key))
    return out


async def task_events(db: Database, **where: Any) -> list[HistoryEntry]:
    async with db.reader() as session:
        stmt = select(HistoryEntry).filter_by(**where).order_by(HistoryEntry.id)
        return list((await session.execute(stmt)).scalars())


async def integration_logs(db: Database) -> list[IntegrationLog]:
    async with db.reader() as session:
        stmt = select(IntegrationLog).order_by(IntegrationLog.id)
        return list((await session.execute(stmt)).scalars())
