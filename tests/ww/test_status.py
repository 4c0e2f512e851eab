"""The status matrix through the API: every move, who may make it, and what
each move leaves behind (history, Bitrix24 jobs, CloudEvents)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from b24mw.app import create_app
from b24mw.kit.db import Database
from b24mw.models.enums import OrderStatus as S
from b24mw.orders.machine import TRANSITIONS
from tests.support.auth import auth
from tests.support.config import make_settings
from tests.support.orders import (
    ORDERS,
    b24_calls,
    create_order,
    integration_logs,
    jobs,
    last_job_id,
    set_status,
    task_events,
    walk_to,
)
from tests.support.problems import assert_problem

pytestmark = pytest.mark.usefixtures("couriers")

ROLES = ("admin", "1c", "courier")
TASK = 555


def expected_code(source: S, target: S, role: str) -> int:
    roles = TRANSITIONS.get((source, target))
    if roles is None:
        return 422
    return 200 if role in {r.value for r in roles} else 403


def sub_for(role: str) -> str:
    return "c1" if role == "courier" else f"{role}-user"


@pytest.mark.parametrize("source", list(S))
async def test_every_move_from_a_status_is_allowed_or_refused_as_the_matrix_says(
    client: httpx.AsyncClient, source: S
) -> None:
    order = await create_order(client, courier_id="c1")
    url = f"{ORDERS}/{order['id']}"
    await walk_to(client, url, source)
    allowed: list[tuple[S, str]] = []
    for target in S:
        for role in ROLES:
            code = expected_code(source, target, role)
            if code == 200:
                allowed.append((target, role))
                continue
            response = await set_status(client, url, target, role, sub_for(role))
            problem = assert_problem(response, code)
            assert problem["code"] == ("conflict.transition" if code == 422 else "auth.forbidden")
            assert f"{source.value} → {target.value}" in problem["detail"]
    current = (await client.get(url, headers=auth("admin"))).json()["status"]
    assert current == source.value, "a refused move must not change the order"
    for target, role in allowed:
        fresh = await create_order(client, courier_id="c1")
        fresh_url = f"{ORDERS}/{fresh['id']}"
        await walk_to(client, fresh_url, source)
        response = await set_status(client, fresh_url, target, role, sub_for(role))
        assert response.status_code == 200, (source, target, role, response.text)
        assert response.json()["status"] == target.value


async def test_same_status_again_is_422(client: httpx.AsyncClient) -> None:
    order = await create_order(client, courier_id="c1")
    url = f"{ORDERS}/{order['id']}"
    problem = assert_problem(await set_status(client, url, "NEW"), 422, "conflict.transition")
    assert problem["errors"] == [
        {"field": "status", "message": "NEW → NEW is not allowed", "code": "conflict.transition"}
    ]


async def test_courier_never_moves_an_order_back(client: httpx.AsyncClient) -> None:
    for source in (S.PICKED_UP, S.FAILED, S.DELIVERED):
        order = await create_order(client, courier_id="c1")
        url = f"{ORDERS}/{order['id']}"
        await walk_to(client, url, source)
        for target in (S.NEW, S.PICKING, S.READY):
            response = await set_status(client, url, target, "courier", "c1")
            assert response.status_code in (403, 422), (source, target)


async def test_other_couriers_order_is_not_found(client: httpx.AsyncClient) -> None:
    order = await create_order(client, courier_id="c1")
    url = f"{ORDERS}/{order['id']}"
    await walk_to(client, url, S.READY)
    assert_problem(await set_status(client, url, "PICKED_UP", "courier", "c2"), 404)


@pytest.mark.parametrize(
    "body",
    [
        {"status": "LOST"},
        {"status": "READY", "lat": 55.7},
        {"status": "READY", "lat": 91, "lon": 0},
    ],
)
async def test_malformed_status_change_is_422(client: httpx.AsyncClient, body: dict) -> None:
    order = await create_order(client)
    response = await client.post(f"{ORDERS}/{order['id']}/status", headers=auth("admin"), json=body)
    assert_problem(response, 422)


def comment(order_id: int, source: str, target: str) -> tuple[str, dict, str]:
    text = f"Заказ {order_id}: {source} → {target}"
    return (
        "task.commentitem.add",
        {"TASKID": TASK, "FIELDS": {"POST_MESSAGE": text}},
        f"task:{TASK}",
    )


def task_call(method: str) -> tuple[str, dict, str]:
    return (method, {"taskId": TASK}, f"task:{TASK}")


async def test_full_run_enqueues_comments_and_task_methods_in_order(
    client: httpx.AsyncClient, db: Database
) -> None:
    order = await create_order(client, courier_id="c1", task_id_b24=TASK)
    oid, url = order["id"], f"{ORDERS}/{order['id']}"
    start = await last_job_id(db)
    await walk_to(client, url, S.DONE)
    assert b24_calls(await jobs(db, after_id=start)) == [
        comment(oid, "NEW", "READY"),
        comment(oid, "READY", "PICKED_UP"),
        comment(oid, "PICKED_UP", "ON_ROUTE"),
        task_call("tasks.task.start"),
        comment(oid, "ON_ROUTE", "DELIVERED"),
        comment(oid, "DELIVERED", "DONE"),
        task_call("tasks.task.complete"),
    ]
    events = [
        j.payload["event"] for j in await jobs(db, after_id=start) if j.kind == "event.publish"
    ]
    assert [(e["type"], e["data"]["from"], e["data"]["to"]) for e in events] == [
        ("integration.task.status_changed", "NEW", "READY"),
        ("integration.task.status_changed", "READY", "PICKED_UP"),
        ("integration.task.status_changed", "PICKED_UP", "ON_ROUTE"),
        ("integration.task.status_changed", "ON_ROUTE", "DELIVERED"),
        ("integration.task.status_changed", "DELIVERED", "DONE"),
    ]
    assert {e["subject"] for e in events} == {f"ww/orders/{oid}"}
    assert {e["source"] for e in events} == {"urn:b24mw:ww"}
    history = await task_events(db, instant_order_id=oid, type="status")
    assert [h.status for h in history] == [
        "NEW",
        "READY",
        "PICKED_UP",
        "ON_ROUTE",
        "DELIVERED",
        "DONE",
    ]
    assert {h.task_id_b24 for h in history} == {TASK}


@pytest.mark.parametrize(
    ("source", "target", "method"),
    [
        (S.NEW, S.REFUSED, "tasks.task.complete"),
        (S.ON_ROUTE, S.FAILED, "tasks.task.defer"),
        (S.FAILED, S.READY, "tasks.task.renew"),
        (S.FAILED, S.DONE, "tasks.task.complete"),
        (S.DELIVERED, S.CASH_RETURNED, None),
    ],
)
async def test_each_move_calls_its_task_method(
    client: httpx.AsyncClient, db: Database, source: S, target: S, method: str | None
) -> None:
    order = await create_order(client, courier_id="c1", task_id_b24=TASK)
    url = f"{ORDERS}/{order['id']}"
    await walk_to(client, url, source)
    start = await last_job_id(db)
    role = next(r.value for r in TRANSITIONS[(source, target)])
    response = await set_status(client, url, target, role, sub_for(role))
    assert response.status_code == 200, response.text
    expected = [comment(order["id"], source.value, target.value)]
    if method:
        expected.append(task_call(method))
    assert b24_calls(await jobs(db, after_id=start)) == expected


async def test_failed_back_to_ready_is_logged(client: httpx.AsyncClient, db: Database) -> None:
    order = await create_order(client, courier_id="c1")
    url = f"{ORDERS}/{order['id']}"
    await walk_to(client, url, S.FAILED)
    assert await integration_logs(db) == []
    response = await set_status(client, url, "READY", "1c", "erp", note="second attempt")
    assert response.status_code == 200
    [log] = await integration_logs(db)
    assert (log.direction, log.resource_ref, log.status) == (
        "internal",
        f"ww/orders/{order['id']}",
        "ok",
    )
    assert log.request_json is not None
    assert log.request_json["from"] == "FAILED" and log.request_json["to"] == "READY"
    assert log.request_id == response.headers["x-request-id"]


async def test_order_without_task_gets_history_and_event_but_no_b24_calls(
    client: httpx.AsyncClient, db: Database
) -> None:
    order = await create_order(client, courier_id="c1")
    start = await last_job_id(db)
    await walk_to(client, f"{ORDERS}/{order['id']}", S.ON_ROUTE)
    rows = await jobs(db, after_id=start)
    assert [j.kind for j in rows] == ["event.publish"] * 3
    assert len(await task_events(db, instant_order_id=order["id"], type="status")) == 4


async def test_note_is_added_to_the_comment(client: httpx.AsyncClient, db: Database) -> None:
    order = await create_order(client, courier_id="c1", task_id_b24=TASK)
    start = await last_job_id(db)
    await set_status(client, f"{ORDERS}/{order['id']}", "PICKING", note="shelf 4")
    [(_, params, _)] = b24_calls(await jobs(db, after_id=start))
    assert params["FIELDS"]["POST_MESSAGE"] == (
        f"Заказ {order['id']}: NEW → PICKING\nКомментарий: shelf 4"
    )


async def test_english_locale_writes_english_comments(db: Database, tmp_path: Path) -> None:
    settings = make_settings(db.url, locale="en", event_sinks=f"file://{tmp_path}/e.jsonl")
    app = create_app(settings, database=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        order = await create_order(client, courier_id="c1", task_id_b24=TASK)
        await set_status(client, f"{ORDERS}/{order['id']}", "PICKING")
    [(_, params, _)] = b24_calls(await jobs(db))
    assert params["FIELDS"]["POST_MESSAGE"] == f"Order {order['id']}: NEW → PICKING"


async def test_replayed_status_change_writes_once(client: httpx.AsyncClient, db: Database) -> None:
    order = await create_order(client, courier_id="c1", task_id_b24=TASK)
    url = f"{ORDERS}/{order['id']}/status"
    headers = auth("admin", key="move-1")
    first = await client.post(url, headers=headers, json={"status": "PICKING"})
    second = await client.post(url, headers=headers, json={"status": "PICKING"})
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert len(await task_events(db, instant_order_id=order["id"], type="status")) == 2
    assert len(b24_calls(await jobs(db))) == 1
    reused = await client.post(url, headers=headers, json={"status": "READY"})
    assert_problem(reused, 409, "conflict.idempotency")
