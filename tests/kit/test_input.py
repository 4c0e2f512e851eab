"""Hostile input is a clear 4xx naming the field, on both engines (issue 11):
integers past BIGINT, NUL in any text, loose types, undecodable bodies."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from b24mw.kit.db import Database
from tests.support.auth import auth
from tests.support.orders import (
    COURIERS,
    DELIVERIES,
    ORDERS,
    add_couriers,
    create_order,
    delivery_body,
    order_body,
)
from tests.support.problems import assert_problem

RETURNS = "/api/v1/returns"
BIG = 2**63
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def couriers(db: Database) -> None:
    await add_couriers(db)


def return_body(**overrides: Any) -> dict[str, Any]:
    line = {"sku": "S-1", "qty": 1, "quality": "new", "reason_code": "broken"}
    body: dict[str, Any] = {"source": "widget", "courier_id": "c1", "items": [line]}
    body.update(overrides)
    return body


def fields(problem: dict[str, Any]) -> list[str]:
    return [error["field"] for error in problem["errors"]]


# --- integers beyond BIGINT (item 9) -----------------------------------------


@pytest.mark.parametrize("value", [BIG, -(BIG + 1), 10**30])
@pytest.mark.parametrize(
    ("url", "field"),
    [
        (f"{ORDERS}/{{}}", "path.order_id"),
        (f"{ORDERS}/{{}}/events", "path.order_id"),
        (f"{DELIVERIES}/{{}}", "path.delivery_id"),
        (f"{DELIVERIES}/{{}}/events", "path.delivery_id"),
        ("/api/v1/admin/dlq/{}", "path.job_id"),
    ],
)
async def test_path_id_beyond_bigint_is_422(
    client: httpx.AsyncClient, url: str, field: str, value: int
) -> None:
    response = await client.get(url.format(value), headers=auth("admin"))
    assert fields(assert_problem(response, 422)) == [field]


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        (COURIERS, {"b24_user_id": BIG}, "query.b24_user_id"),
        (COURIERS, {"page": BIG}, "query.page"),
        (COURIERS, {"page": 2**62}, "query.page"),
        (ORDERS, {"page": 2**62}, "query.page"),
        (DELIVERIES, {"page": 2**62}, "query.page"),
        (RETURNS, {"page": 2**62}, "query.page"),
        ("/api/v1/admin/dlq", {"page": 2**62}, "query.page"),
    ],
)
async def test_query_integer_beyond_its_range_is_422(
    client: httpx.AsyncClient, url: str, params: dict[str, int], field: str
) -> None:
    response = await client.get(url, params=params, headers=auth("admin"))
    assert fields(assert_problem(response, 422)) == [field]


async def test_deepest_page_still_answers(client: httpx.AsyncClient) -> None:
    # Pages reach the first 10,000 rows; past them a cursor goes on (issue 19).
    deepest = {"page": 10_000, "page_size": 1}
    response = await client.get(COURIERS, params=deepest, headers=auth("admin"))
    assert response.status_code == 200
    assert response.json()["items"] == []
    deeper = {"page": 101, "page_size": 100}
    problem = assert_problem(await client.get(COURIERS, params=deeper, headers=auth("admin")), 422)
    assert fields(problem) == ["query.page"]


@pytest.mark.parametrize("value", [BIG, 10**30])
async def test_body_integers_beyond_bigint_are_422(
    client: httpx.AsyncClient, couriers: None, value: int
) -> None:
    cases = [
        (COURIERS, {"id": "c-big", "display_name": "A", "b24_user_id": value}, "b24_user_id"),
        (ORDERS, order_body(courier_id="c1", task_id_b24=value), "task_id_b24"),
        (RETURNS, return_body(task_id_b24=value), "task_id_b24"),
    ]
    line = return_body()["items"][0] | {"photos": [value]}
    cases.append((RETURNS, return_body(items=[line]), "items.0.photos.0"))
    for url, body, field in cases:
        response = await client.post(url, headers=auth("admin"), json=body)
        assert fields(assert_problem(response, 422)) == [field], url
    patch = await client.patch(f"{COURIERS}/c1", headers=auth("admin"), json={"b24_user_id": value})
    assert fields(assert_problem(patch, 422)) == ["b24_user_id"]


async def test_search_text_of_digits_is_not_an_id(
    client: httpx.AsyncClient, couriers: None
) -> None:
    order = await create_order(client, courier_id="c1", title="Order 99999999999999999999")
    for url in (ORDERS, DELIVERIES):
        for q in ("9" * 30, "²", str(BIG)):
            response = await client.get(url, params={"q": q}, headers=auth("admin"))
            assert response.status_code == 200, (url, q, response.text)
    found = await client.get(ORDERS, params={"q": "9" * 20}, headers=auth("admin"))
    assert [o["id"] for o in found.json()["items"]] == [order["id"]]


# --- NUL in any text (item 10) -------------------------------------------------


async def test_nul_in_body_text_is_422_naming_the_field(
    client: httpx.AsyncClient, couriers: None
) -> None:
    cases = [
        (COURIERS, {"id": "c-nul", "display_name": "A\x00B"}, "display_name"),
        (ORDERS, order_body(courier_id="c1", notes="x\x00"), "notes"),
        (
            ORDERS,
            order_body(courier_id="c1", items=[{"sku": "S", "name": "\x00", "qty": 1, "price": 1}]),
            "items.0.name",
        ),
        (DELIVERIES, delivery_body(address="Moscow\x00"), "address"),
        (RETURNS, return_body(comment="\x00"), "comment"),
    ]
    for url, body, field in cases:
        response = await client.post(url, headers=auth("admin"), json=body)
        assert fields(assert_problem(response, 422)) == [field], url
    patch = await client.patch(
        f"{COURIERS}/c1", headers=auth("admin"), json={"display_name": "\x00"}
    )
    assert fields(assert_problem(patch, 422)) == ["display_name"]
    listing = await client.get(COURIERS, headers=auth("admin"))
    assert "c-nul" not in {c["id"] for c in listing.json()["items"]}


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        (COURIERS, {"q": "a\x00"}, "query.q"),
        (ORDERS, {"q": "\x00"}, "query.q"),
        (ORDERS, {"courier_id": "c1\x00"}, "query.courier_id"),
        (DELIVERIES, {"q": "\x00"}, "query.q"),
        (RETURNS, {"courier_id": "c\x00"}, "query.courier_id"),
    ],
)
async def test_nul_in_query_is_422(
    client: httpx.AsyncClient, url: str, params: dict[str, str], field: str
) -> None:
    response = await client.get(url, params=params, headers=auth("admin"))
    assert fields(assert_problem(response, 422)) == [field]


async def test_nul_in_path_is_422(client: httpx.AsyncClient, couriers: None) -> None:
    get = await client.get(f"{COURIERS}/c1%00x", headers=auth("admin"))
    assert fields(assert_problem(get, 422)) == ["path.courier_id"]
    headers = auth("admin", key="nul-path")
    patch = await client.patch(f"{COURIERS}/c1%00", headers=headers, json={"display_name": "B"})
    assert fields(assert_problem(patch, 422)) == ["path.courier_id"]
    # Not stored under the key: the corrected request runs.
    fixed = await client.patch(f"{COURIERS}/c1", headers=headers, json={"display_name": "B"})
    assert fixed.status_code == 200 and "idempotent-replayed" not in fixed.headers


# --- strict types (item 14) ---------------------------------------------------


@pytest.mark.parametrize(
    "value", ["0.5", "1700000000", "2026-02-01", "2026-02-01T00:00:00", "2026-02-01 00:00:00Z"]
)
@pytest.mark.parametrize("url", [ORDERS, DELIVERIES, RETURNS])
async def test_dates_are_rfc3339_only(client: httpx.AsyncClient, url: str, value: str) -> None:
    response = await client.get(url, params={"created_to": value}, headers=auth("admin"))
    assert fields(assert_problem(response, 422)) == ["query.created_to"]


async def test_rfc3339_outside_python_range_in_utc_is_422(client: httpx.AsyncClient) -> None:
    for value in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        response = await client.get(ORDERS, params={"created_from": value}, headers=auth("admin"))
        assert fields(assert_problem(response, 422)) == ["query.created_from"]


async def test_rfc3339_with_offset_and_fraction_is_accepted(client: httpx.AsyncClient) -> None:
    params = {
        "created_from": "2026-02-01T00:00:00.123456+03:00",
        "created_to": "2099-01-01T00:00:00z",
    }
    response = await client.get(ORDERS, params=params, headers=auth("admin"))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("value", [0, 1, "false", "true", None])
async def test_booleans_are_json_booleans(client: httpx.AsyncClient, value: object) -> None:
    body = {"id": "c-b", "display_name": "A", "is_active": value}
    response = await client.post(COURIERS, headers=auth("admin"), json=body)
    assert fields(assert_problem(response, 422)) == ["is_active"]


async def test_query_booleans_are_true_or_false(client: httpx.AsyncClient, couriers: None) -> None:
    for value in ("0", "1", "yes", "off", "True"):
        response = await client.get(COURIERS, params={"is_active": value}, headers=auth("admin"))
        assert fields(assert_problem(response, 422)) == ["query.is_active"], value
    active = await client.get(COURIERS, params={"is_active": "false"}, headers=auth("admin"))
    assert [c["id"] for c in active.json()["items"]] == ["c9"]


@pytest.mark.parametrize("price", ["1.2300000000000000001", "490.00000000000001", "1e-7", "0.001"])
async def test_json_number_price_with_more_than_two_decimals_is_422(
    client: httpx.AsyncClient, couriers: None, price: str
) -> None:
    raw = json.dumps(order_body(courier_id="c1")).replace('"490.50"', price)
    response = await client.post(ORDERS, headers=auth("admin") | JSON, content=raw)
    assert fields(assert_problem(response, 422)) == ["items.0.price"]


async def test_json_number_price_with_two_decimals_is_exact(
    client: httpx.AsyncClient, couriers: None
) -> None:
    raw = json.dumps(order_body(courier_id="c1")).replace('"490.50"', "490.1")
    response = await client.post(ORDERS, headers=auth("admin") | JSON, content=raw)
    assert response.status_code == 201, response.text
    assert response.json()["items"][0]["price"] == "490.10"
    assert response.json()["total_amount"] == "2270.20"


@pytest.mark.parametrize(
    ("field", "value"),
    [("qty", "2"), ("qty", 2.0), ("qty", True), ("price", True), ("price", "-1"), ("price", " 1")],
)
async def test_loose_line_values_are_422(
    client: httpx.AsyncClient, couriers: None, field: str, value: object
) -> None:
    line = {"sku": "S", "name": "N", "qty": 1, "price": "1.00"} | {field: value}
    body = order_body(courier_id="c1", items=[line])
    response = await client.post(ORDERS, headers=auth("admin"), json=body)
    assert fields(assert_problem(response, 422)) == [f"items.0.{field}"]


@pytest.mark.parametrize("value", ["55.7", True, "NaN"])
async def test_coordinates_are_finite_json_numbers(
    client: httpx.AsyncClient, couriers: None, value: object
) -> None:
    order = await create_order(client, courier_id="c1")
    body = {"status": "READY", "lat": value, "lon": 37.6}
    response = await client.post(f"{ORDERS}/{order['id']}/status", headers=auth("admin"), json=body)
    assert fields(assert_problem(response, 422)) == ["lat"]


# --- undecodable bodies (item 15) ---------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id": "\xff\xfe", "display_name": "A"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"id": "c", "display_name": "A", "nested": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001,
        b'{"id": "c", "display_name": NaN}',
        b'{"id": "c", "display_name": "A", "b24_user_id": Infinity}',
        b'{"id": "c", "display_name": "A", "b24_user_id": ' + b"9" * 5000 + b"}",
        b"\xef\xbb\xbf{}",
    ],
    ids=["non-utf8", "deep-list", "deep-object", "nan", "infinity", "5000-digits", "bom"],
)
async def test_undecodable_json_is_400_payload_malformed(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    response = await client.post(COURIERS, headers=auth("admin") | JSON, content=raw)
    assert_problem(response, 400, "payload.malformed")


async def test_unpaired_surrogate_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    raw = b'{"id": "c-s", "display_name": "A\\ud800"}'
    response = await client.post(COURIERS, headers=auth("admin") | JSON, content=raw)
    assert fields(assert_problem(response, 422)) == ["display_name"]
    key = b'{"\\udc80": 1, "id": "c-s", "display_name": "A"}'
    response = await client.post(COURIERS, headers=auth("admin") | JSON, content=key)
    assert_problem(response, 422)
