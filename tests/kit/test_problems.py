"""Every error class of README "HTTP conventions" as problem+json with request_id, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from tests.support.auth import auth
from tests.support.problems import assert_problem


async def test_validation_names_every_offending_field(client: httpx.AsyncClient) -> None:
    body = {"id": "bad id!", "display_name": "", "phone": "12345", "b24_user_id": -1}
    response = await client.post("/api/v1/ww/couriers", headers=auth("admin"), json=body)
    problem = assert_problem(response, 422)
    fields = {e["field"] for e in problem["errors"]}
    assert fields == {"id", "display_name", "phone", "b24_user_id"}


async def test_missing_fields_are_validation_required(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/ww/couriers", headers=auth("admin"), json={})
    problem = assert_problem(response, 422, "validation.required")
    assert {e["field"] for e in problem["errors"]} == {"id", "display_name"}


async def test_unknown_field_is_rejected(client: httpx.AsyncClient) -> None:
    body = {"id": "c1", "display_name": "A", "colour": "red"}
    response = await client.post("/api/v1/ww/couriers", headers=auth("admin"), json=body)
    problem = assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["colour"]


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    headers = auth("admin") | {"Content-Type": "application/json"}
    response = await client.post("/api/v1/ww/couriers", headers=headers, content=b"{nope")
    assert_problem(response, 400, "payload.malformed")


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/nothing-here"), 404, "not_found")


async def test_wrong_method_is_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.put("/health", headers={"Idempotency-Key": "k"})
    assert_problem(response, 405, "method_not_allowed")


async def test_body_over_limit_is_413(client: httpx.AsyncClient) -> None:
    payload = b'{"id": "' + b"x" * (2 * 1024 * 1024 + 1) + b'"}'
    headers = auth("admin") | {"Content-Type": "application/json"}
    response = await client.post("/api/v1/ww/couriers", headers=headers, content=payload)
    assert_problem(response, 413, "payload.too_large")


async def test_chunked_body_over_limit_is_413_while_streaming(client: httpx.AsyncClient) -> None:
    sent = 0

    # No Content-Length: the limit is enforced as bytes arrive.
    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(64):
            sent += 1
            yield b"x" * (64 * 1024)

    headers = auth("admin") | {"Content-Type": "application/json"}
    response = await client.post("/api/v1/ww/couriers", headers=headers, content=chunks())
    assert_problem(response, 413, "payload.too_large")


async def test_unexpected_exception_is_500_without_internals(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    response = await client.get("/boom", headers={"X-Request-Id": "trace-500"})
    problem = assert_problem(response, 500, "internal")
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert problem["request_id"] == "trace-500"


async def test_openapi_declares_problem_responses(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    post = spec["paths"]["/api/v1/ww/couriers"]["post"]["responses"]
    for status in ("400", "401", "403", "409", "413", "422", "500"):
        assert "Problem" in str(post[status]), status
