from __future__ import annotations

from pathlib import Path

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


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/ww/couriers/some-id")  # 401, still counted
    body = (await client.get("/metrics")).text
    assert "b24mw_http_requests_total" in body
    assert 'route="/api/v1/ww/couriers/{courier_id}"' in body
    assert "some-id" not in body


async def test_ping_is_503_problem_when_database_is_down(tmp_path: Path) -> None:
    from b24mw.app import create_app
    from b24mw.kit.db import Database
    from tests.support.config import make_settings
    from tests.support.net import free_port

    url = f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none"
    settings = make_settings(url)
    db = Database(settings)
    app = create_app(settings, database=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/api/v1/system/ping")
    await db.dispose()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "dependency.database_unavailable"
