"""A Walking Warehouse order end to end: API → outbox → worker → the Bitrix24 emulator."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from b24mw.kit.db import Database
from b24mw.models.enums import OrderStatus as S
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.support.orders import ORDERS, create_order, set_status, walk_to
from tests.support.outbound import *  # noqa: F403  (shared outbound fixtures)
from tests.support.outbound import EmulatorHandle, RecordingSink, drain, jobs, text_of

pytestmark = pytest.mark.usefixtures("couriers")


@pytest.fixture
def settings(outbound_settings: Settings) -> Settings:
    """The API enqueues to the emulator and the recording sinks the worker serves."""
    return outbound_settings


def wire(call: dict[str, Any]) -> tuple[str, Any]:
    args = call["args"]
    if call["method"] == "task.commentitem.add":
        return call["method"], (args["TASKID"], text_of(args["FIELDS"]["POST_MESSAGE"]))
    return call["method"], args["taskId"]


async def test_full_run_reaches_bitrix24_in_order_even_when_the_first_call_is_retried(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle
) -> None:
    task = int((await emulator.create_task(title="WW order", responsible_id=101))["id"])
    order = await create_order(client, courier_id="c1", task_id_b24=task)
    oid, url = order["id"], f"{ORDERS}/{order['id']}"
    # The portal refuses the very first call; every later job of the task waits for it.
    await emulator.fault("query_limit", method="task.commentitem.add", count=1)
    await walk_to(client, url, S.DONE)
    await drain(worker, settle=True)

    calls = await emulator.calls()
    first, rest = calls[0], calls[1:]
    assert (first["method"], first["status"], first["error"]) == (
        "task.commentitem.add",
        503,
        "QUERY_LIMIT_EXCEEDED",
    )

    def comment(source: str, target: str) -> tuple[str, Any]:
        return "task.commentitem.add", (task, f"Заказ {oid}: {source} → {target}")

    assert [wire(c) for c in rest] == [
        comment("NEW", "READY"),
        comment("READY", "PICKED_UP"),
        comment("PICKED_UP", "ON_ROUTE"),
        ("tasks.task.get", task),
        ("tasks.task.start", task),
        comment("ON_ROUTE", "DELIVERED"),
        comment("DELIVERED", "DONE"),
        ("tasks.task.get", task),
        ("tasks.task.complete", task),
    ]
    assert {c["status"] for c in rest} == {200}
    portal_task = await emulator.task(task)
    assert portal_task["status"] == 5  # completed
    assert [text_of(c["text"]) for c in portal_task["comments"]] == [
        f"Заказ {oid}: NEW → READY",
        f"Заказ {oid}: READY → PICKED_UP",
        f"Заказ {oid}: PICKED_UP → ON_ROUTE",
        f"Заказ {oid}: ON_ROUTE → DELIVERED",
        f"Заказ {oid}: DELIVERED → DONE",
    ]


async def test_failed_then_ready_defers_and_renews_the_task(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle, db: Database
) -> None:
    task = int((await emulator.create_task(title="WW order", responsible_id=101))["id"])
    order = await create_order(client, courier_id="c1", task_id_b24=task)
    url = f"{ORDERS}/{order['id']}"
    await walk_to(client, url, S.ON_ROUTE)
    await set_status(client, url, "FAILED", "courier", "c1", note="nobody home")
    await drain(worker, settle=True)
    assert (await emulator.task(task))["status"] == 6  # deferred
    response = await set_status(client, url, "READY", "admin")
    assert response.status_code == 200
    await drain(worker, settle=True)
    methods = [c["method"] for c in await emulator.calls() if c["method"].startswith("tasks.")]
    # A task in progress cannot be deferred: it is paused first.
    assert methods == [
        *("tasks.task.get", "tasks.task.start"),
        *("tasks.task.get", "tasks.task.pause", "tasks.task.defer"),
        *("tasks.task.get", "tasks.task.renew"),
    ]
    assert (await emulator.task(task))["status"] == 2  # pending again
    assert {j.status for j in await jobs(db)} == {"done"}


async def test_status_changes_reach_the_event_sink_in_order(
    client: httpx.AsyncClient, worker: Worker, event_sink: RecordingSink
) -> None:
    order = await create_order(client, courier_id="c1")
    await walk_to(client, f"{ORDERS}/{order['id']}", S.PICKED_UP)
    await drain(worker, settle=True)
    events = [r.json() for r in event_sink.requests]
    assert [(e["type"], e["data"].get("to")) for e in events] == [
        ("integration.task.created", None),
        ("integration.task.status_changed", "READY"),
        ("integration.task.status_changed", "PICKED_UP"),
    ]
    assert {(e["source"], e["subject"]) for e in events} == {
        ("urn:b24mw:ww", f"ww/orders/{order['id']}")
    }
