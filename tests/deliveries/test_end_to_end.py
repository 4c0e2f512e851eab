"""A 1C delivery end to end: API → outbox → worker → the Bitrix24 emulator and 1C."""

from __future__ import annotations

import httpx
import pytest

from b24mw.kit.db import Database
from b24mw.models.enums import OrderStatus as S
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.conftest import auth
from tests.lifecycle.helpers import DELIVERIES, create_delivery, set_status, task_events, walk_to
from tests.support.outbound import *  # noqa: F403  (shared outbound fixtures)
from tests.support.outbound import EmulatorHandle, RecordingSink, drain, jobs, text_of

pytestmark = pytest.mark.usefixtures("couriers")


@pytest.fixture
def settings(outbound_settings: Settings) -> Settings:
    return outbound_settings


async def test_delivery_becomes_the_couriers_task_and_its_id_is_stored(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle, db: Database
) -> None:
    delivery = await create_delivery(client)
    await drain(worker, settle=True)

    [add] = await emulator.calls()
    assert (add["method"], add["status"]) == ("tasks.task.add", 200)
    stored = (await client.get(f"{DELIVERIES}/{delivery['id']}", headers=auth("1c"))).json()
    task_id = stored["task_id_b24"]
    assert task_id is not None
    task = await emulator.task(task_id)
    assert task["title"] == "Доставка ЗК-000123: Oleg Ivanov"
    assert task["responsible_id"] == 101
    assert "Адрес: Moscow, Tverskaya 1, apt 5" in task["description"]
    assert "Наложенный платёж: 1740.00 RUB" in task["description"]
    assert "- BAT-2 | Battery | 2 × 250.00" in task["description"]
    linked = [e for e in await task_events(db, order_id=delivery["id"]) if e.task_id_b24]
    assert [(e.type, e.task_id_b24, e.payload_json["event"]) for e in linked] == [
        ("status", task_id, "task_created")
    ]


async def test_changes_made_before_the_task_exists_reach_it_in_order(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle
) -> None:
    # The portal is briefly over its limit: the task add is retried, and the
    # status changes made meanwhile must wait for it and carry its id.
    await emulator.fault("query_limit", method="tasks.task.add", count=1)
    delivery = await create_delivery(client)
    url = f"{DELIVERIES}/{delivery['id']}"
    await walk_to(client, url, S.ON_ROUTE)
    await drain(worker, settle=True)

    every = await emulator.calls()
    assert (every[0]["method"], every[0]["status"]) == ("tasks.task.add", 503)
    calls = [c for c in every if c["status"] == 200]
    stored = (await client.get(url, headers=auth("1c"))).json()
    task_id = stored["task_id_b24"]
    assert [c["method"] for c in calls] == [
        "tasks.task.add",
        "task.commentitem.add",
        "task.commentitem.add",
        "task.commentitem.add",
        "tasks.task.start",
    ]
    assert [c["args"].get("TASKID", c["args"].get("taskId")) for c in calls[1:]] == [task_id] * 4
    task = await emulator.task(task_id)
    assert task["status"] == 3  # in progress
    assert [text_of(c["text"]) for c in task["comments"]] == [
        "Заказ ЗК-000123: NEW → READY",
        "Заказ ЗК-000123: READY → PICKED_UP",
        "Заказ ЗК-000123: PICKED_UP → ON_ROUTE",
    ]


async def test_status_is_handed_to_1c(
    client: httpx.AsyncClient, worker: Worker, onec_sink: RecordingSink
) -> None:
    delivery = await create_delivery(client)
    url = f"{DELIVERIES}/{delivery['id']}"
    await set_status(client, url, "READY", "1c", "erp")  # 1C's own decision: not echoed
    moved = await set_status(client, url, "PICKED_UP", "courier", "c1")
    await drain(worker, settle=True)
    [push] = onec_sink.requests
    assert (push.method, push.path) == ("POST", "/1c/deliveries/status")
    assert push.headers["x-request-id"] == moved.headers["x-request-id"]
    assert push.headers["idempotency-key"] == f"b24mw:delivery:{delivery['id']}:v3"
    body = push.json()
    assert (body["external_id_1c"], body["previous_status"], body["status"]) == (
        "ЗК-000123",
        "READY",
        "PICKED_UP",
    )


async def test_nothing_is_left_undelivered(
    client: httpx.AsyncClient, worker: Worker, db: Database
) -> None:
    delivery = await create_delivery(client)
    await walk_to(client, f"{DELIVERIES}/{delivery['id']}", S.DONE)
    await drain(worker, settle=True)
    assert {j.status for j in await jobs(db)} == {"done"}
