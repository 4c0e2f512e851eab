"""Assignment (incl. a courier declining) and the role × route table of README "Resources"."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from b24mw.kit.db import Database
from b24mw.models.enums import OrderStatus as S
from tests.support.auth import auth
from tests.support.orders import (
    ORDERS,
    b24_calls,
    create_order,
    jobs,
    last_job_id,
    order_body,
    task_events,
    walk_to,
)
from tests.support.problems import assert_problem

pytestmark = pytest.mark.usefixtures("couriers")
TASK = 321


async def assign(
    client: httpx.AsyncClient,
    order_id: int,
    body: dict[str, Any],
    role: str = "admin",
    sub: str = "boss",
) -> httpx.Response:
    return await client.post(f"{ORDERS}/{order_id}/assign", headers=auth(role, sub), json=body)


async def test_admin_assigns_a_courier_and_moves_the_task(
    client: httpx.AsyncClient, db: Database
) -> None:
    order = await create_order(client, task_id_b24=TASK)
    start = await last_job_id(db)
    response = await assign(client, order["id"], {"courier_id": "c2"})
    assert response.status_code == 200, response.text
    assert response.json()["courier_id"] == "c2"
    assert b24_calls(await jobs(db, after_id=start)) == [
        (
            "task.commentitem.add",
            {
                "TASKID": TASK,
                "FIELDS": {"POST_MESSAGE": f"Заказ {order['id']}: назначен курьер c2"},
            },
            f"task:{TASK}",
        ),
        ("tasks.task.update", {"taskId": TASK, "fields": {"RESPONSIBLE_ID": 102}}, f"task:{TASK}"),
    ]
    [event] = await task_events(db, instant_order_id=order["id"], type="comment")
    assert event.payload_json == {"event": "assigned", "from": None, "to": "c2"}


async def test_courier_declines_own_order_and_it_is_recorded(
    client: httpx.AsyncClient, db: Database
) -> None:
    order = await create_order(client, courier_id="c1", task_id_b24=TASK)
    await walk_to(client, f"{ORDERS}/{order['id']}", S.READY)
    start = await last_job_id(db)
    response = await assign(
        client, order["id"], {"courier_id": None, "decline": True}, "courier", "c1"
    )
    assert response.status_code == 200, response.text
    assert response.json()["courier_id"] is None
    [event] = await task_events(db, instant_order_id=order["id"], type="comment")
    assert (event.actor_id, event.payload_json) == (
        "c1",
        {"event": "declined", "from": "c1", "to": None},
    )
    [(method, params, _)] = b24_calls(await jobs(db, after_id=start))
    assert method == "task.commentitem.add"
    assert params["FIELDS"]["POST_MESSAGE"] == f"Заказ {order['id']}: курьер c1 отказался от заказа"
    # Declined: no longer theirs.
    gone = await client.get(f"{ORDERS}/{order['id']}", headers=auth("courier", "c1"))
    assert_problem(gone, 404)


@pytest.mark.parametrize("body", [{"courier_id": "c2"}, {"courier_id": "c1"}, {"courier_id": None}])
async def test_courier_may_only_decline(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    order = await create_order(client, courier_id="c1")
    assert_problem(await assign(client, order["id"], body, "courier", "c1"), 403)


async def test_no_reassignment_after_pick_up(client: httpx.AsyncClient) -> None:
    order = await create_order(client, courier_id="c1")
    await walk_to(client, f"{ORDERS}/{order['id']}", S.PICKED_UP)
    response = await assign(client, order["id"], {"courier_id": "c2"})
    assert_problem(response, 422, "conflict.transition")


async def test_assign_checks_courier_and_task_uniqueness(client: httpx.AsyncClient) -> None:
    taken = await create_order(client, courier_id="c2", task_id_b24=TASK)
    order = await create_order(client, courier_id="c1", task_id_b24=TASK)
    unknown = await assign(client, order["id"], {"courier_id": "ghost"})
    assert assert_problem(unknown, 422)["errors"][0]["field"] == "courier_id"
    duplicate = assert_problem(await assign(client, order["id"], {"courier_id": "c2"}), 409)
    assert duplicate["existing_id"] == taken["id"]
    nobody = await create_order(client)
    assert_problem(await assign(client, nobody["id"], {"courier_id": None, "decline": True}), 422)


# role × route: expected status for each route as (1c, own courier, other courier, admin).
ROUTES: list[tuple[str, str, dict[str, Any] | None, tuple[int, int, int, int]]] = [
    ("GET", "", None, (403, 200, 200, 200)),
    ("GET", "/{id}", None, (403, 200, 404, 200)),
    ("POST", "", order_body(), (403, 201, 201, 201)),
    ("PATCH", "/{id}", {"notes": "x"}, (403, 200, 404, 200)),
    ("POST", "/{id}/assign", {"courier_id": None, "decline": True}, (403, 200, 404, 200)),
    ("POST", "/{id}/status", {"status": "PICKING"}, (200, 403, 404, 200)),
    ("GET", "/{id}/events", None, (403, 200, 404, 200)),
]
ACTORS = [("1c", "erp"), ("courier", "c1"), ("courier", "c2"), ("admin", "boss")]


@pytest.mark.parametrize(("method", "path", "body", "expected"), ROUTES)
async def test_role_by_route(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    expected: tuple[int, int, int, int],
) -> None:
    for (role, sub), code in zip(ACTORS, expected, strict=True):
        order = await create_order(client, courier_id="c1")
        url = ORDERS + path.format(id=order["id"])
        response = await client.request(method, url, headers=auth(role, sub), json=body)
        assert response.status_code == code, (role, sub, method, path, response.text)
    anonymous = await client.request(method, url, headers={"Idempotency-Key": "k"}, json=body)
    assert_problem(anonymous, 401, "auth.invalid_token")
