"""Who may do what on /api/v1/returns (README "Resources"), route by route and role by role."""

from __future__ import annotations

import httpx
import pytest

from tests.returns.helpers import URL, create_return, return_body
from tests.support.auth import auth
from tests.support.problems import assert_problem

pytestmark = pytest.mark.usefixtures("couriers")

# (role, sub) → expected status.  "c-1" owns the return under test.
ONE_C = ("1c", "onec")
ADMIN = ("admin", "alice")
OWNER = ("courier", "c-1")
OTHER_COURIER = ("courier", "c-2")


async def _call(
    client: httpx.AsyncClient, method: str, rid: str, role: tuple[str, str]
) -> httpx.Response:
    headers = auth(*role)
    if method == "GET_LIST":
        return await client.get(URL, headers=headers)
    if method == "GET":
        return await client.get(f"{URL}/{rid}", headers=headers)
    if method == "PUT":
        return await client.put(f"{URL}/{rid}", headers=headers, json=return_body())
    if method == "PATCH":
        return await client.patch(f"{URL}/{rid}", headers=headers, json={"status": "accepted"})
    assert method == "DELETE"
    return await client.delete(f"{URL}/{rid}", headers=headers)


MATRIX = [
    ("GET_LIST", ONE_C, 200),
    ("GET_LIST", ADMIN, 200),
    ("GET_LIST", OWNER, 403),
    ("GET", ONE_C, 200),
    ("GET", ADMIN, 200),
    ("GET", OWNER, 200),
    ("GET", OTHER_COURIER, 404),
    ("PUT", ONE_C, 200),
    ("PUT", ADMIN, 200),
    ("PUT", OWNER, 403),
    ("PATCH", ONE_C, 200),
    ("PATCH", ADMIN, 200),
    ("PATCH", OWNER, 403),
    ("DELETE", ADMIN, 204),
    ("DELETE", ONE_C, 403),
    ("DELETE", OWNER, 403),
]


@pytest.mark.parametrize(("method", "role", "expected"), MATRIX)
async def test_role_matrix_on_existing_return(
    client: httpx.AsyncClient, method: str, role: tuple[str, str], expected: int
) -> None:
    created = await create_return(client, "c-1")
    response = await _call(client, method, created["id"], role)
    if expected >= 400:
        code = {403: "auth.forbidden", 404: "not_found"}[expected]
        assert_problem(response, expected, code)
        still = await client.get(f"{URL}/{created['id']}", headers=auth("admin"))
        assert still.json() == created, "a refused request must change nothing"
    else:
        assert response.status_code == expected, response.text


@pytest.mark.parametrize("method", ["GET_LIST", "GET", "PUT", "PATCH", "DELETE"])
async def test_every_route_needs_a_token(client: httpx.AsyncClient, method: str) -> None:
    created = await create_return(client)
    anonymous = {"Idempotency-Key": "anon"}
    url = URL if method == "GET_LIST" else f"{URL}/{created['id']}"
    verb = "GET" if method == "GET_LIST" else method
    body = None if verb in ("GET", "DELETE") else return_body()
    response = await client.request(verb, url, headers=anonymous, json=body)
    assert_problem(response, 401, "auth.invalid_token")


async def test_anonymous_create_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, headers={"Idempotency-Key": "k"}, json=return_body())
    assert_problem(response, 401, "auth.invalid_token")


async def test_courier_creates_for_themselves(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, headers=auth("courier", "c-2"), json=return_body("c-2"))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["courier_id"] == "c-2"
    assert created["status"] == "pending"
    assert response.headers["location"] == f"{URL}/{created['id']}"
    fetched = await client.get(response.headers["location"], headers=auth("courier", "c-2"))
    assert fetched.json() == created


async def test_courier_cannot_create_for_another_courier(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, headers=auth("courier", "c-1"), json=return_body("c-2"))
    problem = assert_problem(response, 403, "auth.forbidden")
    assert problem["errors"][0]["field"] == "courier_id"
    listing = await client.get(URL, headers=auth("admin"))
    assert listing.json()["total_items"] == 0


async def test_admin_creates_for_any_courier(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, headers=auth("admin"), json=return_body("c-3"))
    assert response.status_code == 201, response.text
    assert response.json()["courier_id"] == "c-3"


async def test_1c_may_not_create(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, headers=auth("1c", "onec"), json=return_body())
    assert_problem(response, 403, "auth.forbidden")


async def test_unknown_courier_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, headers=auth("admin"), json=return_body("c-404"))
    problem = assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["courier_id"]


async def test_unknown_return_is_404(client: httpx.AsyncClient) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert_problem(await client.get(f"{URL}/{missing}", headers=auth("admin")), 404, "not_found")
    response = await client.patch(
        f"{URL}/{missing}", headers=auth("1c", "onec"), json={"status": "accepted"}
    )
    assert_problem(response, 404, "not_found")


async def test_malformed_id_is_422_not_500(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.get(f"{URL}/not-a-uuid", headers=auth("admin")), 422)
    assert problem["errors"][0]["field"] == "path.return_id"
