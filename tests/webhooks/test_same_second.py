"""Two changes of one task inside one second (issue 11, item 1).

Bitrix24's events carry the task id and a whole-second ``ts``: a person who
starts and then completes a delivery's task 0.6 s apart produces two
byte-identical events (and the signing proxy signs both in the same second).
The second change must still reach the delivery's history, in either auth
mode, and reconciliation must repair it when its event is lost.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from b24mw.kit.db import Database
from b24mw.webhooks.reconcile import reconcile
from tests.support.auth import auth
from tests.support.clock import Clock
from tests.support.orders import DELIVERIES, create_delivery
from tests.support.portal import COURIER_USER, ORDER, Portal, open_portal


def start_of_a_second() -> Clock:
    """A manual clock 0.1 s into a whole second: +0.6 s stays in that second."""
    return Clock(float(int(time.time())) + 0.1)


def next_second(clock: Clock) -> None:
    clock.now = float(int(clock.now) + 1) + 0.1


@pytest.fixture(params=["hmac", "token"])
async def portal(
    request: pytest.FixtureRequest, db: Database, tmp_path: Path
) -> AsyncIterator[Portal]:
    clock = start_of_a_second()
    p = await open_portal(db, tmp_path, signed=request.param == "hmac", clock=clock)
    try:
        yield p
    finally:
        await p.close()


def clock_of(portal: Portal) -> Clock:
    assert portal.clock is not None
    return portal.clock


async def act(portal: Portal, task_id: int, action: str) -> None:
    response = await portal.http.post(
        f"/_emulator/person/tasks/{task_id}/status",
        json={"action": action, "actor_id": COURIER_USER},
    )
    assert response.status_code == 200, response.text
    await portal.portal.events.join()


async def delivery_task(portal: Portal) -> tuple[int, int]:
    """A 1C delivery for courier c-17, its task created in the portal."""
    delivery = await create_delivery(portal.hook.client, courier_id="c-17")
    await portal.settle()
    stored = await portal.hook.client.get(f"{DELIVERIES}/{delivery['id']}", headers=auth("admin"))
    task_id = stored.json()["task_id_b24"]
    assert task_id is not None
    return delivery["id"], int(task_id)


async def b24_statuses(portal: Portal, url: str) -> list[str]:
    response = await portal.hook.client.get(f"{url}?page_size=100", headers=auth("admin"))
    assert response.status_code == 200, response.text
    return [
        e["payload"]["b24_status_name"]
        for e in response.json()["items"]
        if e["payload"].get("source") == "bitrix24"
    ]


def update_events(portal: Portal) -> list[dict[str, Any]]:
    return [e for e in portal.portal.events.log if e["event"] == "ONTASKUPDATE"]


async def test_start_then_complete_in_one_second_reaches_the_history(portal: Portal) -> None:
    delivery_id, task_id = await delivery_task(portal)
    clock = clock_of(portal)
    next_second(clock)

    await act(portal, task_id, "start")
    await portal.worker.drain(timeout=30)  # its read sees "in progress"
    clock.advance(0.6)
    await act(portal, task_id, "complete")
    await portal.settle()

    # The two deliveries really were the same bytes (and signed alike).
    start, complete = update_events(portal)
    assert start["form"] == complete["form"]
    assert start["headers"].get("x-signature") == complete["headers"].get("x-signature")
    assert start["status"] == complete["status"] == 200
    history = await b24_statuses(portal, f"{DELIVERIES}/{delivery_id}/events")
    assert history[-2:] == ["in_progress", "completed"]
    # Not an attack: nothing on the SIEM stream.
    assert portal.hook.siem_lines() == []


async def test_both_changes_before_any_read_cost_one_read(portal: Portal) -> None:
    delivery_id, task_id = await delivery_task(portal)
    clock = clock_of(portal)
    next_second(clock)
    rows_before = len(await portal.inbox())

    await act(portal, task_id, "start")
    clock.advance(0.6)
    await act(portal, task_id, "complete")
    await portal.settle()

    # One row read the task after both changes: the final state is recorded.
    assert len(await portal.inbox()) == rows_before + 1
    history = await b24_statuses(portal, f"{DELIVERIES}/{delivery_id}/events")
    assert history[-1] == "completed"
    assert [e["status"] for e in update_events(portal)] == [200, 200]
    assert portal.hook.siem_lines() == []


async def test_reconciliation_rereads_a_task_read_inside_its_change_second(
    portal: Portal,
) -> None:
    task_id = await portal.create_task(ORDER)
    await portal.settle()
    [order] = await portal.orders()
    clock = clock_of(portal)
    next_second(clock)

    await act(portal, task_id, "start")
    await portal.settle()  # read 0.0 s into the change's second
    clock.advance(0.6)
    portal.portal.apply_settings({"events_enabled": False})
    await act(portal, task_id, "complete")  # its event is lost
    clock.advance(5)

    assert await reconcile(portal.worker.context) == 1
    await portal.worker.drain(timeout=30)
    history = await b24_statuses(portal, f"/api/v1/ww/orders/{order['id']}/events")
    assert history[-2:] == ["in_progress", "completed"]
    # That read ran seconds after the change: the next scan is satisfied.
    assert await reconcile(portal.worker.context) == 0
