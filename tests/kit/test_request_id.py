from __future__ import annotations

import uuid

import httpx
from hypothesis import given
from hypothesis import strategies as st

from b24mw.kit.request_context import is_valid_request_id
from tests.support.auth import auth

VISIBLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


async def test_supplied_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-Id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


async def test_missing_request_id_is_generated_as_uuid(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    uuid.UUID(response.headers["x-request-id"])


async def test_request_id_on_unknown_route_and_in_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope", headers={"X-Request-Id": "trace-404"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "trace-404"
    assert response.json()["request_id"] == "trace-404"


async def test_request_id_echoed_on_auth_error(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/ww/couriers", headers={"X-Request-Id": "trace-401"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "trace-401"
    assert response.json()["request_id"] == "trace-401"


async def test_invalid_request_id_is_400_with_fresh_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-Id": "x" * 129})
    assert response.status_code == 400
    body = response.json()
    assert body["errors"][0]["field"] == "X-Request-Id"
    assert body["request_id"] == response.headers["x-request-id"] != "x" * 129


async def test_request_id_with_space_is_rejected(client: httpx.AsyncClient) -> None:
    headers = auth("admin") | {"X-Request-Id": "has space"}
    response = await client.post("/api/v1/ww/couriers", headers=headers, json={})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


@given(st.text(VISIBLE, min_size=1, max_size=128))
def test_visible_ascii_up_to_128_is_valid(value: str) -> None:
    assert is_valid_request_id(value)


@given(st.text(min_size=1, max_size=200))
def test_validator_matches_the_rule(value: str) -> None:
    expected = len(value) <= 128 and all(0x21 <= ord(c) <= 0x7E for c in value)
    assert is_valid_request_id(value) is expected


def test_empty_and_too_long_are_invalid() -> None:
    assert not is_valid_request_id("")
    assert not is_valid_request_id("a" * 129)
