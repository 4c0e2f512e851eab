"""``GET /api/v1/ww/report/deliveries`` as JSON: rows, durations, totals,
filters and who may see what."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from b24mw.kit.db import Database
from b24mw.models.enums import OrderStatus as S
from b24mw.models.history import HistoryEntry
from b24mw.reports.schemas import DeliveriesReport
from tests.reports.helpers import REPORT, T0, Seed, seed
from tests.support.auth import auth
from tests.support.orders import ORDERS, create_delivery, create_order, walk_to

pytestmark = pytest.mark.usefixtures("couriers")


async def report(
    client: httpx.AsyncClient, role: str = "admin", sub: str = "boss", **params: Any
) -> Any:
    response = await client.get(REPORT, params=params, headers=auth(role, sub))
    assert response.status_code == 200, response.text
    body = response.json()
    DeliveriesReport.model_validate(body)
    return body


async def test_both_kinds_with_durations_and_totals(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed(
        db,
        Seed(
            "instant",
            "c1",
            "DONE",
            T0,
            "Case",
            amount="490.50",
            history=[(0, "NEW"), (10, "READY"), (52.5, "DONE")],
        ),
        Seed(
            "delivery",
            "c2",
            "REFUSED",
            T0 + timedelta(hours=1),
            "TV",
            amount="1250.00",
            history=[(0, "NEW"), (3.04, "REFUSED")],
        ),
        Seed(
            "instant",
            "c1",
            "ON_ROUTE",
            T0 + timedelta(hours=2),
            "Open",
            amount="10.00",
            history=[(0, "NEW"), (5, "ON_ROUTE")],
        ),
        Seed("instant", None, "NEW", T0 + timedelta(hours=3), "Nobody's", amount="0.00"),
    )
    body = await report(client)
    rows = body["items"]
    assert [(r["kind"], r["title"]) for r in rows] == [
        ("instant", "Case"),
        ("delivery", "TV"),
        ("instant", "Open"),
        ("instant", "Nobody's"),
    ]
    assert [r["duration_min"] for r in rows] == [52.5, 3.0, None, None]
    assert rows[0]["courier_name"] == "Courier c1"
    assert rows[3]["courier_id"] is None and rows[3]["courier_name"] is None
    assert rows[0]["total_amount"] == "490.50"
    assert rows[0]["created_at"] == "2025-03-01T09:00:00.000000Z"
    assert body["totals"] == {
        "total_orders": 4,
        "total_amount": "1750.50",
        "total_duration_min": 55.5,
        "amounts_by_currency": {"RUB": "1750.50"},
    }


async def test_orders_made_through_the_api_get_their_duration(
    client: httpx.AsyncClient, db: Database
) -> None:
    order = await create_order(client, courier_id="c1")
    await walk_to(client, f"{ORDERS}/{order['id']}", S.DONE)
    delivery = await create_delivery(client)
    body = await report(client)
    by_kind = {r["kind"]: r for r in body["items"]}
    assert by_kind["instant"]["order_id"] == order["id"]
    assert by_kind["instant"]["status"] == "DONE"
    # Walked in milliseconds: a duration, and a short one.
    assert 0 <= by_kind["instant"]["duration_min"] < 1
    assert by_kind["delivery"]["order_id"] == delivery["id"]
    assert by_kind["delivery"]["duration_min"] is None
    total = Decimal(order["total_amount"]) + Decimal(delivery["total_amount"])
    assert Decimal(body["totals"]["total_amount"]) == total


async def test_duration_falls_back_to_the_order_when_history_is_gone(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed(db, Seed(status="DONE", history=[(0, "NEW"), (30, "DONE")]))
    async with db.unit_of_work() as session:
        await session.execute(delete(HistoryEntry))
    (row,) = (await report(client))["items"]
    assert row["duration_min"] == 30.0  # created_at → updated_at


async def test_filters_status_courier_kind(client: httpx.AsyncClient, db: Database) -> None:
    await seed(
        db,
        Seed("instant", "c1", "DONE", T0, "a", history=[(0, "NEW"), (1, "DONE")]),
        Seed("instant", "c2", "READY", T0, "b"),
        Seed("delivery", "c1", "READY", T0, "c"),
        Seed("delivery", "c2", "FAILED", T0, "d"),
    )

    async def titles(**params: Any) -> list[str]:
        return sorted(r["title"] for r in (await report(client, **params))["items"])

    assert await titles(status=["READY", "FAILED"]) == ["b", "c", "d"]
    assert await titles(courier_id="c1") == ["a", "c"]
    assert await titles(kind="delivery") == ["c", "d"]
    assert await titles(kind="instant", status="READY") == ["b"]
    assert (await report(client, courier_id="c1", status="DONE"))["totals"]["total_orders"] == 1


async def test_created_range_is_inclusive(client: httpx.AsyncClient, db: Database) -> None:
    day = T0.replace(hour=0)
    await seed(
        db,
        Seed(created_at=day - timedelta(microseconds=1), title="before"),
        Seed(created_at=day, title="first"),
        Seed(created_at=day + timedelta(hours=23, minutes=59, seconds=59), title="last"),
        Seed(created_at=day + timedelta(days=1), title="next day"),
    )

    async def titles(**params: Any) -> list[str]:
        return [r["title"] for r in (await report(client, **params))["items"]]

    assert await titles(created_from="2025-03-01", created_to="2025-03-01") == ["first", "last"]
    exact = {"created_from": "2025-03-01T00:00:00Z", "created_to": "2025-03-02T00:00:00Z"}
    assert await titles(**exact) == ["first", "last", "next day"]
    assert await titles(created_to="2025-03-01T03:00:00+03:00") == ["before", "first"]
    assert await titles(created_from="2025-03-02") == ["next day"]


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        (
            {"created_from": "2025-03-02", "created_to": "2025-03-01"},
            {"query.created_from", "query.created_to"},
        ),
        (
            {"created_from": "2025-03-01T10:00:00Z", "created_to": "2025-03-01T09:59:59Z"},
            {"query.created_from", "query.created_to"},
        ),
        ({"created_from": "2025-03-01T10:00:00"}, {"query.created_from"}),  # no offset
        ({"created_to": "yesterday"}, {"query.created_to"}),
        ({"status": "LOST"}, {"query.status.0"}),
        ({"kind": "parcel"}, {"query.kind"}),
        ({"format": "pdf"}, {"query.format"}),
    ],
)
async def test_bad_filters_are_422_naming_the_fields(
    client: httpx.AsyncClient, params: dict[str, str], fields: set[str]
) -> None:
    response = await client.get(REPORT, params=params, headers=auth("admin", "boss"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert {e["field"] for e in problem["errors"]} == fields
    assert problem["request_id"] == response.headers["x-request-id"]


async def test_a_courier_sees_only_their_own(client: httpx.AsyncClient, db: Database) -> None:
    await seed(db, Seed(courier_id="c1", title="mine"), Seed(courier_id="c2", title="theirs"))
    own = await report(client, "courier", "c1")
    assert [r["title"] for r in own["items"]] == ["mine"]
    assert own["totals"]["total_orders"] == 1
    explicit = await report(client, "courier", "c1", courier_id="c1")
    assert [r["title"] for r in explicit["items"]] == ["mine"]

    for fmt in ("json", "csv", "xlsx"):
        response = await client.get(
            REPORT, params={"courier_id": "c2", "format": fmt}, headers=auth("courier", "c1")
        )
        assert response.status_code == 403, response.text
        assert response.json()["errors"][0]["field"] == "courier_id"


# Tokens are made when the test runs: one made at collection may have expired
# (15 minutes) by the time a long suite reaches the test.
@pytest.mark.parametrize(("role", "status"), [(None, 401), ("1c", 403)])
async def test_who_may_not(client: httpx.AsyncClient, role: str | None, status: int) -> None:
    response = await client.get(REPORT, headers=auth(role, "erp") if role else {})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


async def test_empty_report(client: httpx.AsyncClient) -> None:
    body = await report(client)
    assert body == {
        "items": [],
        "totals": {
            "total_orders": 0,
            "total_amount": "0.00",
            "total_duration_min": 0.0,
            "amounts_by_currency": {},
        },
    }


async def test_totals_per_currency(client: httpx.AsyncClient, db: Database) -> None:
    await seed(db, Seed(amount="10.00"), Seed(amount="2.50", currency="USD"), Seed(amount="1.25"))
    totals = (await report(client))["totals"]
    assert totals["amounts_by_currency"] == {"RUB": "11.25", "USD": "2.50"}
    assert totals["total_amount"] == "13.75"
