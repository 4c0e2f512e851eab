"""Two changes of one order at the same time: one wins, the other gets 409."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text, update

from b24mw.kit.db import Database
from b24mw.kit.errors import ConcurrentUpdate
from b24mw.models.enums import OrderStatus as S
from b24mw.models.orders import InstantOrder
from b24mw.orders.schemas import StatusChange
from b24mw.outbox import Outbox
from b24mw.settings import Settings
from b24mw.ww import service
from b24mw.ww.repository import OrderRepository
from tests.support.auth import auth
from tests.support.orders import ORDERS, create_order, jobs, task_events
from tests.support.problems import assert_problem

pytestmark = pytest.mark.usefixtures("couriers")


async def _waiting_on_locks(db: Database) -> int:
    async with db.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        )
        return int(result.scalar_one())


async def test_two_concurrent_status_changes_one_wins_one_409(
    client: httpx.AsyncClient, db: Database
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): the race cannot happen there")
    order = await create_order(client, courier_id="c1", task_id_b24=42)
    url = f"{ORDERS}/{order['id']}/status"

    # Hold the row lock so both requests read version 1 and then queue on
    # their UPDATE; releasing it lets exactly one version check succeed.
    async with db.engine.connect() as locker:
        await locker.execute(
            text("SELECT id FROM instant_orders WHERE id = :id FOR UPDATE"), {"id": order["id"]}
        )
        first = asyncio.create_task(
            client.post(url, headers=auth("admin", "a"), json={"status": "PICKING"})
        )
        second = asyncio.create_task(
            client.post(url, headers=auth("1c", "b"), json={"status": "READY"})
        )
        for _ in range(500):
            if await _waiting_on_locks(db) >= 2:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the two requests never queued on the row lock")
        await locker.rollback()
        responses = await asyncio.gather(first, second)

    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    assert_problem(loser, 409, "conflict.concurrent_update")
    winner = next(r for r in responses if r.status_code == 200).json()
    stored = (await client.get(f"{ORDERS}/{order['id']}", headers=auth("admin"))).json()
    assert stored["status"] == winner["status"]
    # The loser left nothing behind: one status event, one comment job.
    assert len(await task_events(db, instant_order_id=order["id"], type="status")) == 2
    assert sum(1 for j in await jobs(db) if j.kind == "b24.call") == 1


async def test_stale_version_is_a_concurrent_update(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The service maps a lost optimistic-lock race to 409 on both engines."""
    order = await create_order(client, courier_id="c1")
    with pytest.raises(ConcurrentUpdate):
        async with db.unit_of_work() as session:
            stale = await OrderRepository(session).snapshot(order["id"])
            assert stale is not None and stale.version == 1
            # Someone else commits a change after we read the row.
            await session.execute(
                update(InstantOrder)
                .where(InstantOrder.id == order["id"])
                .values(version=InstantOrder.version + 1)
                .execution_options(synchronize_session=False)
            )

            async def read_before_the_change(self: OrderRepository, order_id: int) -> object:
                return stale

            monkeypatch.setattr(OrderRepository, "snapshot", read_before_the_change)
            await service.change_status(
                session,
                Outbox(settings),
                service.SYSTEM_ACTOR,
                order["id"],
                StatusChange(status=S.PICKING),
                locale="ru",
            )
    monkeypatch.undo()
    stored = (await client.get(f"{ORDERS}/{order['id']}", headers=auth("admin"))).json()
    assert stored["status"] == "NEW"
