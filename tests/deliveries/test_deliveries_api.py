"""Deliveries from 1C through the API: create (queues the courier's task),
read, list, status with the shared matrix, Bitrix24 sync and 1C hand-off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from b24mw import registry
from b24mw.app import create_app
from b24mw.kit.db import Database
from b24mw.models.enums import OrderStatus as S
from tests.support.auth import auth
from tests.support.config import make_settings
from tests.support.orders import (
    DELIVERIES,
    b24_calls,
    create_delivery,
    delivery_body,
    integration_logs,
    jobs,
    last_job_id,
    set_status,
    task_events,
    walk_to,
)
from tests.support.problems import assert_problem

pytestmark = pytest.mark.usefixtures("couriers")


async def link_task(db: Database, delivery_id: int, task_id: int) -> None:
    """What the worker does when Bitrix24 answers tasks.task.add."""
    hook = registry.RESULT_HOOKS["deliveries.task_created"]
    async with db.unit_of_work() as session:
        await hook(session, {"delivery_id": delivery_id}, {"task": {"id": str(task_id)}})


async def test_create_stores_delivery_and_queues_the_couriers_task(
    client: httpx.AsyncClient, db: Database
) -> None:
    response = await client.post(DELIVERIES, headers=auth("1c", "erp"), json=delivery_body())
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"{DELIVERIES}/{body['id']}"
    assert body["total_amount"] == "1740.00"  # lines 1490 + delivery 250
    assert (body["status"], body["task_id_b24"], body["client_phone"]) == (
        "NEW",
        None,
        "+79120001122",
    )
    assert body["title"] == "Доставка ЗК-000123: Oleg Ivanov"
    [add] = [j for j in await jobs(db) if j.kind == "b24.call"]
    assert add.ordering_key == f"delivery:{body['id']}"
    assert add.payload["method"] == "tasks.task.add"
    assert add.payload["on_result"] == "deliveries.task_created"
    assert add.payload["context"] == {"delivery_id": body["id"]}
    fields = add.payload["params"]["fields"]
    assert fields["TITLE"] == body["title"] and fields["RESPONSIBLE_ID"] == 101
    assert fields["DESCRIPTION"].splitlines() == [
        "Получатель: Oleg Ivanov",
        "Адрес: Moscow, Tverskaya 1, apt 5",
        "Телефон: +79120001122",
        "Наложенный платёж: 1740.00 RUB",
        "Стоимость доставки: 250.00 RUB",
        "Итого: 1740.00 RUB",
        "Товары:",
        "- TV-1 | Remote | 1 × 990.00",
        "- BAT-2 | Battery | 2 × 250.00",
        # The job's marker: a lost answer is looked up before a second add.
        f"[{add.payload['marker']}]",
    ]
    [created] = await task_events(db, order_id=body["id"])
    assert (created.type, created.status) == ("status", "NEW")
    [event] = [j.payload["event"] for j in await jobs(db) if j.kind == "event.publish"]
    assert (event["type"], event["subject"]) == (
        "integration.task.created",
        f"deliveries/{body['id']}",
    )
    fetched = await client.get(response.headers["location"], headers=auth("admin"))
    assert fetched.json() == body


async def test_duplicate_external_id_is_409_naming_the_delivery(
    client: httpx.AsyncClient, db: Database
) -> None:
    first = await create_delivery(client)
    again = await client.post(DELIVERIES, headers=auth("1c", "erp"), json=delivery_body())
    problem = assert_problem(again, 409)
    assert problem["existing_id"] == first["id"]
    assert problem["errors"][0]["field"] == "external_id_1c"
    assert len([j for j in await jobs(db) if j.kind == "b24.call"]) == 1


@pytest.mark.parametrize(
    ("courier_id", "reason"),
    [
        ("ghost", "unknown courier"),
        ("c3", "the courier has no Bitrix24 user (b24_user_id)"),
        ("c9", "inactive courier"),
    ],
)
async def test_courier_must_exist_and_have_a_b24_user(
    client: httpx.AsyncClient, courier_id: str, reason: str
) -> None:
    response = await client.post(
        DELIVERIES, headers=auth("1c"), json=delivery_body(courier_id=courier_id)
    )
    problem = assert_problem(response, 422)
    assert problem["errors"] == [{"field": "courier_id", "message": reason}]


async def test_supplied_total_must_match(client: httpx.AsyncClient) -> None:
    response = await client.post(
        DELIVERIES, headers=auth("1c"), json=delivery_body(total_amount="1490.00")
    )
    assert assert_problem(response, 422)["errors"][0]["field"] == "total_amount"
    ok = await client.post(DELIVERIES, headers=auth("1c"), json=delivery_body(total_amount="1740"))
    assert ok.status_code == 201


@pytest.mark.parametrize(
    ("role", "sub", "create", "read_own", "read_other", "move"),
    [
        ("1c", "erp", 201, 200, 200, 200),
        ("admin", "boss", 201, 200, 200, 200),
        ("courier", "c1", 403, 200, 404, 403),
    ],
)
async def test_roles(
    client: httpx.AsyncClient,
    role: str,
    sub: str,
    create: int,
    read_own: int,
    read_other: int,
    move: int,
) -> None:
    mine = await create_delivery(client, external_id_1c="D-1")
    other = await create_delivery(client, external_id_1c="D-2", courier_id="c2")
    headers = auth(role, sub)
    made = await client.post(DELIVERIES, headers=headers, json=delivery_body(external_id_1c="D-3"))
    assert made.status_code == create
    assert (await client.get(f"{DELIVERIES}/{mine['id']}", headers=headers)).status_code == read_own
    assert (
        await client.get(f"{DELIVERIES}/{other['id']}", headers=headers)
    ).status_code == read_other
    moved = await set_status(client, f"{DELIVERIES}/{mine['id']}", "PICKING", role, sub)
    assert moved.status_code == move


async def test_list_filters_and_courier_scope(client: httpx.AsyncClient) -> None:
    a = await create_delivery(client, external_id_1c="A-1", customer_name="Alice")
    b = await create_delivery(client, external_id_1c="B-2", courier_id="c2")
    await set_status(client, f"{DELIVERIES}/{a['id']}", "READY")

    async def ids(role: str = "admin", sub: str = "boss", **params: Any) -> list[int]:
        response = await client.get(DELIVERIES, headers=auth(role, sub), params=params)
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["items"]]

    assert await ids() == [b["id"], a["id"]]
    assert await ids(status="READY") == [a["id"]]
    assert await ids(courier_id="c2") == [b["id"]]
    assert await ids(q="alice") == [a["id"]]
    assert await ids(q="b-2") == [b["id"]]
    assert await ids("courier", "c2") == [b["id"]]
    forbidden = await client.get(
        DELIVERIES, headers=auth("courier", "c2"), params={"courier_id": "c1"}
    )
    assert_problem(forbidden, 403)


async def test_status_before_the_task_exists_waits_for_its_id(
    client: httpx.AsyncClient, db: Database
) -> None:
    delivery = await create_delivery(client)
    did, url = delivery["id"], f"{DELIVERIES}/{delivery['id']}"
    await walk_to(client, url, S.ON_ROUTE)
    key = f"delivery:{did}"
    queued = b24_calls(await jobs(db))
    assert [(m, k) for m, _, k in queued] == [
        ("tasks.task.add", key),
        ("task.commentitem.add", key),
        ("task.commentitem.add", key),
        ("task.commentitem.add", key),
        ("tasks.task.start", key),
    ]
    assert [p.get("TASKID", p.get("taskId", "-")) for _, p, _ in queued[1:]] == [None] * 4
    assert queued[1][1]["FIELDS"]["POST_MESSAGE"] == "Заказ ЗК-000123: NEW → READY"

    await link_task(db, did, 9100)

    filled = b24_calls(await jobs(db))
    assert [p.get("TASKID", p.get("taskId")) for _, p, _ in filled[1:]] == [9100] * 4
    assert (await client.get(url, headers=auth("admin"))).json()["task_id_b24"] == 9100
    linked = [
        e
        for e in await task_events(db, order_id=did)
        if e.payload_json.get("event") == "task_created"
    ]
    assert [(e.task_id_b24, e.status, e.actor_id) for e in linked] == [(9100, "ON_ROUTE", "b24")]

    start = await last_job_id(db)
    await set_status(client, url, "DELIVERED", "courier", "c1")
    assert b24_calls(await jobs(db, after_id=start)) == [
        (
            "task.commentitem.add",
            {"TASKID": 9100, "FIELDS": {"POST_MESSAGE": "Заказ ЗК-000123: ON_ROUTE → DELIVERED"}},
            key,
        )
    ]


async def test_task_hook_is_idempotent_and_keeps_the_first_task(
    client: httpx.AsyncClient, db: Database
) -> None:
    delivery = await create_delivery(client)
    await link_task(db, delivery["id"], 500)
    await link_task(db, delivery["id"], 500)
    await link_task(db, delivery["id"], 501)
    stored = (await client.get(f"{DELIVERIES}/{delivery['id']}", headers=auth("admin"))).json()
    assert stored["task_id_b24"] == 500
    created = [e for e in await task_events(db, order_id=delivery["id"]) if e.task_id_b24]
    assert len(created) == 1
    [log] = await integration_logs(db)
    assert (log.status, log.error_code) == ("duplicate", "duplicate_task")


async def test_status_change_is_handed_to_1c_unless_1c_made_it(
    db: Database, tmp_path: Path
) -> None:
    settings = make_settings(
        db.url, onec_url="http://1c.test/api/", event_sinks=f"file://{tmp_path}/e.jsonl"
    )
    app = create_app(settings, database=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        delivery = await create_delivery(client)
        url = f"{DELIVERIES}/{delivery['id']}"
        await set_status(client, url, "READY", "1c", "erp")
        await set_status(client, url, "PICKED_UP", "courier", "c1", note="took it")
    [push] = [j for j in await jobs(db) if j.kind == "onec.push"]
    assert push.payload["url"] == "http://1c.test/api/deliveries/status"
    assert push.ordering_key == f"onec:delivery:{delivery['id']}"
    body = push.payload["body"]
    assert (body["external_id_1c"], body["previous_status"], body["status"], body["note"]) == (
        "ЗК-000123",
        "READY",
        "PICKED_UP",
        "took it",
    )
    assert push.payload["idempotency_key"] == f"b24mw:delivery:{delivery['id']}:v3"


async def test_delivery_status_follows_the_shared_matrix(client: httpx.AsyncClient) -> None:
    delivery = await create_delivery(client)
    url = f"{DELIVERIES}/{delivery['id']}"
    assert_problem(await set_status(client, url, "DONE"), 422, "conflict.transition")
    await walk_to(client, url, S.READY)
    assert_problem(await set_status(client, url, "PICKED_UP", "admin"), 403)
    assert_problem(await set_status(client, url, "PICKED_UP", "courier", "c2"), 404)
    assert (await set_status(client, url, "PICKED_UP", "courier", "c1")).status_code == 200
    history = await client.get(f"{url}/events", headers=auth("courier", "c1"))
    assert [e["status"] for e in history.json()["items"]] == ["NEW", "READY", "PICKED_UP"]


async def test_1c_retry_with_the_same_key_creates_one_delivery_and_one_task_job(
    client: httpx.AsyncClient, db: Database
) -> None:
    headers = auth("1c", "erp", key="1c-doc-123")
    first = await client.post(DELIVERIES, headers=headers, json=delivery_body())
    second = await client.post(DELIVERIES, headers=headers, json=delivery_body())
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert [j.payload["method"] for j in await jobs(db) if j.kind == "b24.call"] == [
        "tasks.task.add"
    ]


async def test_openapi_declares_the_routes_and_their_problems(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path, method in [
        ("/api/v1/deliveries", "post"),
        ("/api/v1/deliveries/{delivery_id}/status", "post"),
        ("/api/v1/ww/orders", "post"),
        ("/api/v1/ww/orders/{order_id}/assign", "post"),
        ("/api/v1/ww/orders/{order_id}/status", "post"),
        ("/api/v1/ww/orders/{order_id}/events", "get"),
    ]:
        responses = paths[path][method]["responses"]
        assert {"401", "403", "404", "409", "422"} <= responses.keys(), path
        assert "Problem" in str(responses["422"])


async def test_q_searches_1c_ids_literally(client: httpx.AsyncClient) -> None:
    for external in ("ZK-1%", "ZK_2", "ZK-3"):
        await create_delivery(client, external_id_1c=external)
    for q, expected in (("%", ["ZK-1%"]), ("_", ["ZK_2"]), ("zk-", ["ZK-3", "ZK-1%"])):
        response = await client.get(DELIVERIES, params={"q": q}, headers=auth("admin"))
        assert [d["external_id_1c"] for d in response.json()["items"]] == expected, q


async def test_delivery_total_beyond_numeric_12_2_is_422(client: httpx.AsyncClient) -> None:
    lines = [{"sku": "S", "name": "N", "qty": 1, "price": "9999999999.99"}]
    body = delivery_body(items=lines, delivery_price="0.01", cod_amount="0")
    problem = assert_problem(
        await client.post(DELIVERIES, headers=auth("1c", "erp"), json=body), 422
    )
    assert [e["field"] for e in problem["errors"]] == ["items"]
