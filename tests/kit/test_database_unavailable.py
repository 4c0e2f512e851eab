"""PostgreSQL shutting down or starting up is a 503 with Retry-After, like a
lost connection, never a 500 (issue 11): tried against a real server that is
really shut down, on a server of its own so the rest of the suite is spared."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx

from b24mw.app import create_app
from b24mw.kit.db import Database
from b24mw.migrations import upgrade
from tests.support.auth import auth
from tests.support.config import make_settings
from tests.support.postgres import PostgresServer
from tests.support.problems import assert_problem

URL = "/api/v1/ww/couriers"


async def _connect(server: PostgresServer) -> asyncpg.Connection:
    return await asyncpg.connect(host="127.0.0.1", port=server.port, user="b24mw", database="own")


async def _until_refused_as_shutting_down(server: PostgresServer) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            conn = await _connect(server)
        except asyncpg.CannotConnectNowError:
            return
        await conn.close()
        assert time.monotonic() < deadline, "the server never said it was shutting down"
        await asyncio.sleep(0.05)


def assert_unavailable(response: httpx.Response) -> None:
    assert_problem(response, 503, "dependency.database_unavailable")
    assert int(response.headers["retry-after"]) >= 1


async def test_shutting_down_is_503_then_the_same_app_recovers(
    own_pg_server: PostgresServer,
) -> None:
    url = own_pg_server.url("own")
    migrator = Database(make_settings(url))
    await upgrade(migrator.engine)
    await migrator.dispose()
    settings = make_settings(url)
    db = Database(settings, pre_ping=False)  # as the API runs it
    app = create_app(settings, database=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        # A session that stays open keeps a smart shutdown in its "shutting
        # down" state: every new connection is refused with SQLSTATE 57P03.
        holder = await _connect(own_pg_server)
        await asyncio.to_thread(own_pg_server.begin_shutdown)
        await _until_refused_as_shutting_down(own_pg_server)

        assert_unavailable(await client.get(URL, headers=auth("admin")))
        body = {"id": "c-1", "display_name": "Anna"}
        write = await client.post(URL, headers=auth("admin", key="during"), json=body)
        assert_unavailable(write)
        assert_unavailable(await client.get("/api/v1/system/ping"))

        await holder.close()
        await asyncio.to_thread(own_pg_server.finish_shutdown)
        await asyncio.to_thread(own_pg_server.start_again)

        # The same app, the same key: the write was never stored, so it runs now.
        again = await client.post(URL, headers=auth("admin", key="during"), json=body)
        assert again.status_code == 201, again.text
        assert "idempotent-replayed" not in again.headers

        # An administrator ends the app's pooled connections (SQLSTATE 57P01).
        admin = await _connect(own_pg_server)
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = 'own' AND pid <> pg_backend_pid()"
        )
        await admin.close()
        first = await client.get(URL, headers=auth("admin"))
        assert first.status_code in (200, 503), first.text
        if first.status_code == 503:
            assert_unavailable(first)
        listing = await client.get(URL, headers=auth("admin"))
        assert listing.status_code == 200
        assert [c["id"] for c in listing.json()["items"]] == ["c-1"]
    await db.dispose()
