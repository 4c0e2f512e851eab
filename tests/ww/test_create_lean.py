"""Creating an order costs what creating a return costs (issue 19): the same
statements per request, and the checks that used to be queries of their own
(courier, one order per task) still hold, also against a concurrent create."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from b24mw.kit.db import Database
from tests.support.auth import auth
from tests.support.orders import ORDERS, order_body, task_events
from tests.support.problems import assert_problem
from tests.support.statements import statements

pytestmark = pytest.mark.usefixtures("couriers")
RETURNS = "/api/v1/returns"


def return_body() -> dict[str, Any]:
    line = {"sku": "SKU-1", "qty": 1, "quality": "defect", "reason_code": "broken"}
    return {
        "source": "widget",
        "courier_id": "c1",
        "task_id_b24": 77,
        "items": [line, {**line, "sku": "SKU-2"}],
    }


async def test_order_create_sends_no_more_statements_than_return_create(
    client: httpx.AsyncClient, db: Database
) -> None:
    courier = auth("courier", "c1")
    # Warm: first requests of a process load metadata the later ones do not.
    await client.post(RETURNS, headers=auth("courier", "c1"), json=return_body())
    await client.post(ORDERS, headers=auth("courier", "c1"), json=order_body(task_id_b24=1))

    with statements(db) as for_return:
        response = await client.post(RETURNS, headers=courier, json=return_body())
        assert response.status_code == 201, response.text
    with statements(db) as for_order:
        response = await client.post(
            ORDERS, headers=auth("courier", "c1"), json=order_body(task_id_b24=2)
        )
        assert response.status_code == 201, response.text

    assert len(for_order) <= len(for_return), (for_order, for_return)
    if not db.is_sqlite:
        # Claim, the order with its checks and lines, the history with the
        # event job and the stored answer: as many as a return.
        assert len(for_order) == len(for_return), (for_order, for_return)
    assert not any("couriers" in s and s.lstrip().upper().startswith("SELECT") for s in for_order)


@pytest.mark.parametrize(
    ("courier_id", "message"), [("c9", "inactive courier"), ("nobody", "unknown courier")]
)
async def test_refused_courier_writes_nothing(
    client: httpx.AsyncClient, db: Database, courier_id: str, message: str
) -> None:
    body = order_body(courier_id=courier_id, task_id_b24=5)
    problem = assert_problem(await client.post(ORDERS, headers=auth("admin"), json=body), 422)
    assert [(e["field"], e["message"]) for e in problem["errors"]] == [("courier_id", message)]
    async with db.engine.connect() as conn:
        counts = await conn.execute(
            text("SELECT (SELECT count(*) FROM instant_orders), (SELECT count(*) FROM task_events)")
        )
        assert tuple(counts.one()) == (0, 0)


async def test_concurrent_creates_of_one_task_make_one_order(
    client: httpx.AsyncClient, db: Database
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): the race cannot happen there")
    body = order_body(courier_id="c1", task_id_b24=42)
    # Hold off every insert until both requests are queued, so neither sees
    # the other's order when it checks: the unique index decides.
    async with db.engine.connect() as locker:
        await locker.execute(text("LOCK TABLE instant_orders IN SHARE MODE"))
        first = asyncio.create_task(client.post(ORDERS, headers=auth("admin", "a"), json=body))
        second = asyncio.create_task(client.post(ORDERS, headers=auth("admin", "b"), json=body))
        for _ in range(500):
            waiting = await locker.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted"
                    " AND relation = 'instant_orders'::regclass"
                )
            )
            if waiting.scalar_one() >= 2:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the two creates never queued on the table lock")
        await locker.rollback()
        responses = await asyncio.gather(first, second)

    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 409], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 201).json()
    loser = assert_problem(next(r for r in responses if r.status_code == 409), 409)
    assert loser["code"] == "conflict.duplicate"
    assert loser["existing_id"] == winner["id"]
    assert len(await task_events(db, instant_order_id=winner["id"])) == 1
    async with db.engine.connect() as conn:
        lines = await conn.execute(text("SELECT count(*) FROM instant_order_lines"))
        assert lines.scalar_one() == 2
