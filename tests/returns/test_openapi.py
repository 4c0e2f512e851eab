"""The published contract: clients generate code from /openapi.json."""

from __future__ import annotations

import httpx

PROBLEMS = {"400", "401", "403", "404", "409", "422"}


async def test_returns_routes_and_errors_are_documented(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert set(paths["/api/v1/returns"]) == {"get", "post"}
    assert set(paths["/api/v1/returns/{return_id}"]) == {"get", "put", "patch", "delete"}
    for ops in (paths["/api/v1/returns"], paths["/api/v1/returns/{return_id}"]):
        for op in ops.values():
            assert PROBLEMS <= set(op["responses"]), op["operationId"]
            assert op["description"], "route docstrings are the OpenAPI text"
    schemas = spec["components"]["schemas"]
    assert "items" in schemas["ReturnRead"]["properties"]
    assert "line_id" in schemas["ReturnLineRead"]["properties"]
    assert schemas["ReturnCreate"]["additionalProperties"] is False
    photo = schemas["ReturnLineCreate"]["properties"]["photos"]["items"]
    assert {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 2**63} in photo["anyOf"]
