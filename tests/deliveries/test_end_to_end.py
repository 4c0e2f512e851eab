"""A 1C delivery end to end: API → outbox → worker → the Bitrix24 emulator and 1C."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from b24mw.kit.db import Database
from b24mw.models.enums import OrderStatus as S
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.support.auth import auth
from tests.support.orders import DELIVERIES, create_delivery, set_status, task_events, walk_to
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
        "tasks.task.get",  # the status first: the start is planned from it
        "tasks.task.start",
    ]
    assert [c["args"].get("TASKID", c["args"].get("taskId")) for c in calls[1:]] == [task_id] * 5
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


async def _tasks(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    response = await emulator.control.get("/_emulator/tasks")
    response.raise_for_status()
    tasks: list[dict[str, Any]] = response.json()
    return tasks


async def test_lost_task_add_answer_finds_the_task_instead_of_a_second_one(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle, db: Database
) -> None:
    # The portal creates the task, then the answer is lost.
    await emulator.fault("http_500", method="tasks.task.add", count=1, phase="after")
    delivery = await create_delivery(client)
    url = f"{DELIVERIES}/{delivery['id']}"
    await walk_to(client, url, S.PICKED_UP)
    await drain(worker, settle=True)

    [task] = await _tasks(emulator)
    stored = (await client.get(url, headers=auth("1c"))).json()
    # The lookup found it, and the result hook ran as if the answer had come.
    assert stored["task_id_b24"] == task["id"]
    assert [text_of(c["text"]) for c in task["comments"]] == [
        "Заказ ЗК-000123: NEW → READY",
        "Заказ ЗК-000123: READY → PICKED_UP",
    ]
    # The marker is a line people can ignore, and no stray tag.
    assert task["description"].splitlines()[-1].startswith("[b24mw:")
    assert task["tags"] == []
    lookup = [c for c in await emulator.calls() if c["method"] == "tasks.task.list"]
    assert [c["args"]["filter"]["RESPONSIBLE_ID"] for c in lookup] == [101]
    assert {j.status for j in await jobs(db)} == {"done"}


async def test_task_add_lost_before_the_portal_ran_it_is_sent_again(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle
) -> None:
    await emulator.fault("html_502", method="tasks.task.add", count=1)
    delivery = await create_delivery(client)
    await drain(worker, settle=True)
    [task] = await _tasks(emulator)
    stored = (await client.get(f"{DELIVERIES}/{delivery['id']}", headers=auth("1c"))).json()
    assert stored["task_id_b24"] == task["id"]
    assert [c["method"] for c in await emulator.calls()] == [
        "tasks.task.add",
        "tasks.task.list",
        "tasks.task.add",
    ]


@pytest.mark.parametrize(
    ("target", "method", "b24_status"),
    [
        (S.ON_ROUTE, "tasks.task.start", 3),
        (S.DONE, "tasks.task.complete", 5),
        (S.FAILED, "tasks.task.defer", 6),
    ],
)
async def test_status_call_whose_answer_was_lost_is_read_back_not_dead_lettered(
    client: httpx.AsyncClient,
    worker: Worker,
    emulator: EmulatorHandle,
    db: Database,
    target: S,
    method: str,
    b24_status: int,
) -> None:
    delivery = await create_delivery(client)
    await drain(worker, settle=True)
    # The portal changes the status, then the answer is lost.
    await emulator.fault("http_500", method=method, count=1, phase="after")
    await walk_to(client, f"{DELIVERIES}/{delivery['id']}", target)
    await drain(worker, settle=True)

    [task] = await _tasks(emulator)
    assert task["status"] == b24_status
    assert {j.status for j in await jobs(db)} == {"done"}
    calls = [c["method"] for c in await emulator.calls()]
    # Sent once, read back once (already in the target status), never re-sent.
    assert calls.count(method) == 1
    assert calls[calls.index(method) + 1] == "tasks.task.get"


async def test_renew_whose_answer_was_lost_is_read_back(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle, db: Database
) -> None:
    delivery = await create_delivery(client)
    url = f"{DELIVERIES}/{delivery['id']}"
    await walk_to(client, url, S.FAILED)
    await drain(worker, settle=True)
    await emulator.fault("http_500", method="tasks.task.renew", count=1, phase="after")
    await set_status(client, url, "READY", "admin", "boss")
    await drain(worker, settle=True)
    [task] = await _tasks(emulator)
    assert task["status"] == 2
    assert {j.status for j in await jobs(db)} == {"done"}


async def test_status_call_lost_before_it_ran_is_sent_again(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle, db: Database
) -> None:
    delivery = await create_delivery(client)
    await drain(worker, settle=True)
    await emulator.fault("html_502", method="tasks.task.start", count=1)
    await walk_to(client, f"{DELIVERIES}/{delivery['id']}", S.ON_ROUTE)
    await drain(worker, settle=True)
    [task] = await _tasks(emulator)
    assert task["status"] == 3
    calls = [c["method"] for c in await emulator.calls() if c["method"].startswith("tasks.")]
    assert calls[-3:] == ["tasks.task.start", "tasks.task.get", "tasks.task.start"]
    assert {j.status for j in await jobs(db)} == {"done"}


async def test_hashes_in_1c_text_make_no_tags_on_the_task(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle
) -> None:
    delivery = await create_delivery(
        client,
        external_id_1c="#77",
        address="Tverskaya 1 #5, entrance #2",
        notes="#instant_order is not ours to set",
        items=[{"sku": "#A", "name": "Case #1", "qty": 1, "price": "10"}],
    )
    await drain(worker, settle=True)

    stored = (await client.get(f"{DELIVERIES}/{delivery['id']}", headers=auth("1c"))).json()
    task = await emulator.task(stored["task_id_b24"])
    assert task["tags"] == []
    # People still read the text as 1C wrote it (an invisible joiner before "#").
    seen = task["description"].replace("\u2060", "")
    assert "Tverskaya 1 #5, entrance #2" in seen
    assert "- #A | Case #1 | 1 × 10.00" in seen


async def test_the_lost_task_add_is_found_past_the_first_page_of_look_alikes(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle, db: Database
) -> None:
    """60 tasks with the same title and responsible person the same day: the
    lookup pages by >ID until it finds the one with the job's marker."""
    title = "Доставка ЗК-000777: Oleg Ivanov"
    for _ in range(60):
        await emulator.create_task(title=title, responsible_id=101)
    await emulator.fault("http_500", method="tasks.task.add", count=1, phase="after")
    delivery = await create_delivery(client, external_id_1c="ЗК-000777", title=title)
    await drain(worker, settle=True)

    tasks = await _tasks(emulator)
    assert len(tasks) == 61  # found, not created a second time
    stored = (await client.get(f"{DELIVERIES}/{delivery['id']}", headers=auth("1c"))).json()
    assert stored["task_id_b24"] == tasks[-1]["id"]
    lookups = [c["args"] for c in await emulator.calls() if c["method"] == "tasks.task.list"]
    assert [a["filter"].get(">ID") for a in lookups] == [None, tasks[49]["id"]]
    assert {a["start"] for a in lookups} == {-1}
    assert {j.status for j in await jobs(db)} == {"done"}
