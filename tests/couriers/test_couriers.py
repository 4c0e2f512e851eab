"""The courier directory end to end through the conventions."""

from __future__ import annotations

import httpx
import pytest

from tests.support.auth import auth
from tests.support.problems import assert_problem

URL = "/api/v1/ww/couriers"


async def create(client: httpx.AsyncClient, cid: str, name: str, **extra: object) -> httpx.Response:
    body = {"id": cid, "display_name": name, **extra}
    return await client.post(URL, headers=auth("admin"), json=body)


async def test_create_returns_201_location_and_normalised_phone(client: httpx.AsyncClient) -> None:
    response = await create(client, "c-101", "Ivan Petrov", phone="8 912 345-67-89", b24_user_id=7)
    assert response.status_code == 201
    assert response.headers["location"] == f"{URL}/c-101"
    body = response.json()
    assert body["phone"] == "+79123456789"
    assert body["is_active"] is True and body["b24_user_id"] == 7
    assert body["created_at"].endswith("Z")
    fetched = await client.get(response.headers["location"], headers=auth("admin"))
    assert fetched.json() == body


@pytest.mark.parametrize("phone", ["12345", "+1 555 123 4567", "+7912345678", "phone"])
async def test_bad_phone_is_422(client: httpx.AsyncClient, phone: str) -> None:
    problem = assert_problem(await create(client, "c-1", "A", phone=phone), 422)
    assert [e["field"] for e in problem["errors"]] == ["phone"]


async def test_duplicate_id_is_409(client: httpx.AsyncClient) -> None:
    await create(client, "c-1", "A")
    problem = assert_problem(await create(client, "c-1", "B"), 409, "conflict")
    assert problem["errors"][0]["field"] == "id"


async def test_duplicate_b24_user_is_409(client: httpx.AsyncClient) -> None:
    await create(client, "c-1", "A", b24_user_id=5)
    problem = assert_problem(await create(client, "c-2", "B", b24_user_id=5), 409)
    assert problem["errors"][0]["field"] == "b24_user_id"


async def test_patch_updates_and_clears(client: httpx.AsyncClient) -> None:
    await create(client, "c-1", "A", phone="+79120000000", b24_user_id=5)
    response = await client.patch(
        f"{URL}/c-1",
        headers=auth("admin"),
        json={"display_name": "Anna", "phone": None, "is_active": False},
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["display_name"], body["phone"], body["is_active"]) == ("Anna", None, False)
    assert body["b24_user_id"] == 5


async def test_get_unknown_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{URL}/ghost", headers=auth("admin")), 404, "not_found")


async def test_search_pages_and_filters(client: httpx.AsyncClient) -> None:
    for i in range(25):
        await create(client, f"c-{i:02d}", f"Courier {i:02d}", b24_user_id=100 + i)
    page1 = (await client.get(URL, headers=auth("admin"), params={"page_size": 10})).json()
    assert (page1["total_items"], page1["total_pages"], page1["has_next"]) == (25, 3, True)
    assert [c["id"] for c in page1["items"]][:2] == ["c-00", "c-01"]
    page3 = (
        await client.get(URL, headers=auth("admin"), params={"page": 3, "page_size": 10})
    ).json()
    assert len(page3["items"]) == 5 and page3["has_next"] is False
    found = (await client.get(URL, headers=auth("admin"), params={"q": "courier 07"})).json()
    assert [c["id"] for c in found["items"]] == ["c-07"]
    by_user = (await client.get(URL, headers=auth("admin"), params={"b24_user_id": 112})).json()
    assert [c["id"] for c in by_user["items"]] == ["c-12"]


@pytest.mark.parametrize("params", [{"page": 0}, {"page_size": 0}, {"page_size": 101}])
async def test_bad_pagination_is_422(client: httpx.AsyncClient, params: dict) -> None:
    problem = assert_problem(await client.get(URL, headers=auth("admin"), params=params), 422)
    assert problem["errors"][0]["field"].startswith("query.")


async def test_courier_lists_only_themselves(client: httpx.AsyncClient) -> None:
    await create(client, "c-1", "A")
    await create(client, "c-2", "B")
    mine = (await client.get(URL, headers=auth("courier", "c-2"))).json()
    assert [c["id"] for c in mine["items"]] == ["c-2"]


# Role × route matrix (README "Resources"): GET list courier+admin, POST admin, GET/PATCH one admin.
MATRIX = [
    ("get", URL, {"admin": 200, "courier": 200, "1c": 403}),
    ("post", URL, {"admin": 201, "courier": 403, "1c": 403}),
    ("get", f"{URL}/c-1", {"admin": 200, "courier": 403, "1c": 403}),
    ("patch", f"{URL}/c-1", {"admin": 200, "courier": 403, "1c": 403}),
]


@pytest.mark.parametrize("method,url,expected", MATRIX)
@pytest.mark.parametrize("role", ["admin", "courier", "1c"])
async def test_role_matrix(
    client: httpx.AsyncClient, method: str, url: str, expected: dict[str, int], role: str
) -> None:
    await create(client, "c-1", "A")
    body = {"id": "c-new", "display_name": "N"} if method == "post" else {"display_name": "Z"}
    sent = body if method in ("post", "patch") else None
    response = await client.request(method.upper(), url, headers=auth(role, "c-1"), json=sent)
    assert response.status_code == expected[role], response.text
    anonymous = await client.request(method.upper(), url, json=sent)
    assert anonymous.status_code == 401


async def test_q_searches_literally(client: httpx.AsyncClient) -> None:
    for cid, name in (("c-1", "100% Anna"), ("c_2", "Boris"), ("c-3", "Vera")):
        assert (await create(client, cid, name)).status_code == 201
    for q, expected in (("%", ["c-1"]), ("_", ["c_2"]), ("c-", ["c-1", "c-3"])):
        response = await client.get(URL, params={"q": q}, headers=auth("admin"))
        assert [c["id"] for c in response.json()["items"]] == expected, q
