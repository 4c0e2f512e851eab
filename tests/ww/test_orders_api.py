"""Walking Warehouse orders through the API: create, read, list, edit."""

from __future__ import annotations

import httpx
import pytest

from b24mw.kit.db import Database
from tests.support.auth import auth
from tests.support.orders import ORDERS, create_order, jobs, order_body, task_events
from tests.support.problems import assert_problem

pytestmark = pytest.mark.usefixtures("couriers")


async def test_create_computes_total_normalises_phone_and_sets_location(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        ORDERS, headers=auth("admin"), json=order_body(courier_id="c1", task_id_b24=555)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"{ORDERS}/{body['id']}"
    assert body["total_amount"] == "2271.00"
    assert body["client_phone"] == "+79123456789"
    assert (body["status"], body["origin"], body["currency_code"]) == ("NEW", "api", "RUB")
    assert [(i["line_no"], i["sku"], i["price"]) for i in body["items"]] == [
        (1, "CASE-1", "490.50"),
        (2, "CHG-2", "1290.00"),
    ]
    fetched = await client.get(response.headers["location"], headers=auth("admin"))
    assert fetched.json() == body


async def test_supplied_total_is_a_checksum(client: httpx.AsyncClient) -> None:
    wrong = await client.post(ORDERS, headers=auth("admin"), json=order_body(total_amount="100"))
    problem = assert_problem(wrong, 422)
    assert [e["field"] for e in problem["errors"]] == ["total_amount"]
    right = await client.post(ORDERS, headers=auth("admin"), json=order_body(total_amount="2271.0"))
    assert right.status_code == 201


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("client_phone", "12345"),
        ("client_phone", "+1 555 123 4567"),
        ("items", []),
        ("currency_code", "rub"),
        ("title", ""),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(
    client: httpx.AsyncClient, field: str, value: object
) -> None:
    response = await client.post(ORDERS, headers=auth("admin"), json=order_body(**{field: value}))
    problem = assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == [field]


async def test_bad_lines_name_the_line_field(client: httpx.AsyncClient) -> None:
    items = [{"sku": "A", "name": "A", "qty": 0, "price": "-1"}]
    response = await client.post(ORDERS, headers=auth("admin"), json=order_body(items=items))
    problem = assert_problem(response, 422)
    assert {e["field"] for e in problem["errors"]} == {"items.0.qty", "items.0.price"}


async def test_one_order_per_task_and_courier(client: httpx.AsyncClient) -> None:
    first = await create_order(client, courier_id="c1", task_id_b24=777)
    again = await client.post(
        ORDERS, headers=auth("admin"), json=order_body(courier_id="c1", task_id_b24=777)
    )
    problem = assert_problem(again, 409)
    assert problem["existing_id"] == first["id"]
    assert str(first["id"]) in problem["errors"][0]["message"]
    other_courier = await create_order(client, courier_id="c2", task_id_b24=777)
    assert other_courier["id"] != first["id"]


async def test_courier_creates_only_for_themselves(client: httpx.AsyncClient) -> None:
    mine = await create_order(client, "courier", "c1")
    assert mine["courier_id"] == "c1"
    other = await client.post(
        ORDERS, headers=auth("courier", "c1"), json=order_body(courier_id="c2")
    )
    problem = assert_problem(other, 403, "auth.forbidden")
    assert problem["errors"][0]["field"] == "courier_id"


@pytest.mark.parametrize("courier_id", ["nobody", "c9"])
async def test_unknown_or_inactive_courier_is_422(
    client: httpx.AsyncClient, courier_id: str
) -> None:
    response = await client.post(
        ORDERS, headers=auth("admin"), json=order_body(courier_id=courier_id)
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["field"] == "courier_id"


async def test_create_records_history_and_created_event_without_b24_calls(
    client: httpx.AsyncClient, db: Database
) -> None:
    order = await create_order(client, courier_id="c1", task_id_b24=555)
    events = await task_events(db, instant_order_id=order["id"])
    assert [(e.type, e.status, e.task_id_b24) for e in events] == [("status", "NEW", 555)]
    rows = await jobs(db)
    assert [j.kind for j in rows] == ["event.publish"]
    event = rows[0].payload["event"]
    assert (event["type"], event["source"], event["subject"]) == (
        "integration.task.created",
        "urn:b24mw:ww",
        f"ww/orders/{order['id']}",
    )
    assert event["data"]["total_amount"] == "2271.00"


async def test_replayed_create_returns_the_same_order_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    headers = auth("admin", key="create-once")
    first = await client.post(ORDERS, headers=headers, json=order_body())
    second = await client.post(ORDERS, headers=headers, json=order_body())
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    listed = await client.get(ORDERS, headers=auth("admin"))
    assert listed.json()["total_items"] == 1


async def test_list_filters_and_paginates(client: httpx.AsyncClient) -> None:
    a = await create_order(client, courier_id="c1", title="Red umbrella")
    b = await create_order(client, courier_id="c2", title="Blue scarf")
    c = await create_order(client, courier_id="c1", title="Green hat", task_id_b24=9001)
    ready = await client.post(
        f"{ORDERS}/{a['id']}/status", headers=auth("admin"), json={"status": "READY"}
    )
    assert ready.status_code == 200

    async def ids(**params: str | int | list[str]) -> list[int]:
        response = await client.get(ORDERS, headers=auth("admin"), params=params)
        assert response.status_code == 200, response.text
        return [o["id"] for o in response.json()["items"]]

    assert await ids() == [c["id"], b["id"], a["id"]]
    assert await ids(status="READY") == [a["id"]]
    assert await ids(status=["READY", "NEW"]) == [c["id"], b["id"], a["id"]]
    assert await ids(courier_id="c2") == [b["id"]]
    assert await ids(q="SCARF") == [b["id"]]
    assert await ids(q="9001") == [c["id"]]
    assert await ids(q="") == [c["id"], b["id"], a["id"]]  # an empty q narrows nothing
    assert await ids(created_from="2000-01-01T00:00:00Z", created_to="2000-01-02T00:00:00Z") == []
    page = (await client.get(ORDERS, headers=auth("admin"), params={"page_size": 2})).json()
    assert (page["total_items"], page["total_pages"], page["has_next"]) == (3, 2, True)
    bad = await client.get(ORDERS, headers=auth("admin"), params={"status": "LOST"})
    assert_problem(bad, 422)
    naive = await client.get(
        ORDERS, headers=auth("admin"), params={"created_from": "2024-01-01T00:00:00"}
    )
    assert_problem(naive, 422)


async def test_courier_lists_only_own_orders(client: httpx.AsyncClient) -> None:
    mine = await create_order(client, courier_id="c1")
    await create_order(client, courier_id="c2")
    await create_order(client)
    listed = await client.get(ORDERS, headers=auth("courier", "c1"))
    assert [o["id"] for o in listed.json()["items"]] == [mine["id"]]
    others = await client.get(ORDERS, headers=auth("courier", "c1"), params={"courier_id": "c2"})
    assert_problem(others, 403)


async def test_patch_replaces_lines_and_recomputes_total(client: httpx.AsyncClient) -> None:
    order = await create_order(client, courier_id="c1")
    url = f"{ORDERS}/{order['id']}"
    items = [{"sku": "X-1", "name": "Cable", "qty": 3, "price": "99.90"}]
    response = await client.patch(
        url, headers=auth("courier", "c1"), json={"items": items, "notes": "leave at door"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [i["sku"] for i in body["items"]] == ["X-1"]
    assert (body["total_amount"], body["notes"]) == ("299.70", "leave at door")
    assert (await client.get(url, headers=auth("admin"))).json() == body
    mismatch = await client.patch(
        url, headers=auth("admin"), json={"items": items, "total_amount": "300"}
    )
    assert_problem(mismatch, 422)
    cleared = await client.patch(url, headers=auth("admin"), json={"notes": None})
    assert cleared.json()["notes"] is None and cleared.json()["total_amount"] == "299.70"


async def test_patch_after_new_is_refused(client: httpx.AsyncClient) -> None:
    order = await create_order(client, courier_id="c1")
    url = f"{ORDERS}/{order['id']}"
    await client.post(f"{url}/status", headers=auth("admin"), json={"status": "PICKING"})
    response = await client.patch(url, headers=auth("admin"), json={"notes": "late"})
    assert_problem(response, 422, "conflict.transition")


async def test_patch_rejects_fields_it_does_not_edit(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    response = await client.patch(
        f"{ORDERS}/{order['id']}", headers=auth("admin"), json={"status": "DONE"}
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["field"] == "status"


async def test_events_list_the_order_history(client: httpx.AsyncClient) -> None:
    order = await create_order(client, courier_id="c1")
    url = f"{ORDERS}/{order['id']}"
    await client.post(
        f"{url}/status",
        headers=auth("admin", "boss"),
        json={"status": "READY", "note": "packed", "lat": 55.75, "lon": 37.62},
    )
    response = await client.get(f"{url}/events", headers=auth("courier", "c1"))
    assert response.status_code == 200
    items = response.json()["items"]
    assert [(e["type"], e["status"]) for e in items] == [
        ("status", "NEW"),
        ("status", "READY"),
        ("geo", "READY"),
    ]
    assert items[1]["payload"] == {
        "event": "status_changed",
        "from": "NEW",
        "to": "READY",
        "note": "packed",
    }
    assert items[1]["actor_id"] == "boss" and items[1]["ts"].endswith("Z")
    assert items[2]["payload"] == {"lat": 55.75, "lon": 37.62}
    assert items[1]["request_id"] is not None


@pytest.mark.parametrize(
    ("q", "expected"),
    [("%", ["100% cotton"]), ("_", ["snake_case"]), ("/", ["a/b"]), ("\\", ["back\\slash"])],
)
async def test_q_searches_literally(client: httpx.AsyncClient, q: str, expected: list[str]) -> None:
    for title in ("100% cotton", "snake_case", "a/b", "back\\slash", "plain"):
        await create_order(client, courier_id="c1", title=title)
    response = await client.get(ORDERS, params={"q": q}, headers=auth("admin"))
    assert [o["title"] for o in response.json()["items"]] == expected


async def test_a_list_gives_each_orders_lines_with_exact_amounts(
    client: httpx.AsyncClient,
) -> None:
    """The lines come with the page (on PostgreSQL as JSON): amounts a
    float cannot hold stay exact, the lines in their order."""
    lines = [
        {"sku": "A", "name": "A", "qty": 1, "price": "9999999.99"},
        {"sku": "B", "name": "B", "qty": 3, "price": "0.10"},
    ]
    created = await create_order(client, courier_id="c1", items=lines)
    bare = await create_order(client, courier_id="c2")
    response = await client.get(ORDERS, headers=auth("admin"))
    assert response.status_code == 200, response.text
    listed = {o["id"]: o for o in response.json()["items"]}
    assert listed[created["id"]]["items"] == created["items"]
    assert [(i["sku"], i["price"]) for i in listed[created["id"]]["items"]] == [
        ("A", "9999999.99"),
        ("B", "0.10"),
    ]
    assert listed[bare["id"]]["items"] == bare["items"]


async def test_order_total_beyond_numeric_12_2_is_422(client: httpx.AsyncClient) -> None:
    # Each line fits; their total does not fit numeric(12, 2).
    lines = [{"sku": f"S{n}", "name": "N", "qty": 1000, "price": "9999999.99"} for n in range(2)]
    response = await client.post(
        ORDERS, headers=auth("admin"), json=order_body(courier_id="c1", items=lines)
    )
    problem = assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["items"]
    listing = await client.get(ORDERS, headers=auth("admin"))
    assert listing.json()["total_items"] == 0
    # The largest total that fits is stored exactly.
    fits = [{"sku": "S", "name": "N", "qty": 1, "price": "9999999999.99"}]
    created = await create_order(client, courier_id="c1", items=fits)
    assert created["total_amount"] == "9999999999.99"
    order = created["id"]
    patch = await client.patch(
        f"{ORDERS}/{order}", headers=auth("admin"), json={"items": fits + fits}
    )
    assert [e["field"] for e in assert_problem(patch, 422)["errors"]] == ["items"]
