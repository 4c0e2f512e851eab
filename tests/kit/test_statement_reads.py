"""Statement reads (``ReadStatementsDep``) run on a bare connection that the
route hands back once its answer is built: whatever the answer — a page, a
404, a refused cursor — the connection is back in the pool and the request's
place in line is free, so reads past the pool's size never queue behind
connections nobody holds."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from b24mw.deps import NoReadScope, ReadStatementsDep
from b24mw.kit.db import Database
from tests.support.auth import auth


async def test_every_answer_gives_the_connection_back(
    client: httpx.AsyncClient, db: Database
) -> None:
    paths = {
        "/api/v1/returns": 200,
        f"/api/v1/returns/{uuid.uuid4()}": 404,
        "/api/v1/ww/orders/987654": 404,
        "/api/v1/ww/orders/987654/events": 404,
        "/api/v1/returns?cursor=not-a-cursor": 422,
        "/api/v1/admin/dlq": 200,
    }
    admin = auth("admin")  # made per test: a token lives minutes, the suite longer
    # More requests than the pool holds: a connection or a place kept by any
    # of them would leave the last ones waiting.
    for _ in range(db.pool_capacity + 1):
        for path, status in paths.items():
            assert (await client.get(path, headers=admin)).status_code == status, path
    pool = db.read_engine.sync_engine.pool
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    if db.is_sqlite:
        return  # no line to wait in: SQLite has no pool size to share
    # Every place in line is free again: as many reads as the pool holds
    # get theirs at once (a lost place would make one wait 30 s).
    held = await asyncio.wait_for(
        asyncio.gather(*(db.statement_reads() for _ in range(db.pool_capacity))), 5
    )
    for reads in held:
        await reads.close()
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_concurrent_reads_past_the_pool_all_answer(
    client: httpx.AsyncClient, db: Database
) -> None:
    admin = auth("admin")
    answers = await asyncio.wait_for(
        asyncio.gather(
            *(client.get("/api/v1/ww/orders", headers=admin) for _ in range(3 * db.pool_capacity))
        ),
        30,
    )
    assert {a.status_code for a in answers} == {200}
    assert db.read_engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_route_that_would_not_close_them_cannot_have_them(db: Database) -> None:
    # Only kit.routing.ApiRoute closes a statement read's connection; any
    # other route asking for one is refused before a connection is taken.
    router = APIRouter()

    @router.get("/plain")
    async def plain(session: ReadStatementsDep) -> dict[str, str]:
        return {"closed_by": "nobody"}

    app = FastAPI()
    app.state.db = db
    app.include_router(router)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        with pytest.raises(NoReadScope):
            await c.get("/plain")
    assert db.read_engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
