from __future__ import annotations

import httpx


async def test_health_is_anonymous(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_ping_round_trips_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/system/ping")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
