"""The request's unit of work on its own, without the idempotency layer: a
write route with no Idempotency-Key commits once, an error rolls it back, and
the answer is sent only after the commit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from b24mw.deps import NoUnitOfWork, WriteSessionDep
from b24mw.kit.db import Database
from b24mw.kit.errors import Conflict
from b24mw.kit.problems import install_problem_handlers
from b24mw.kit.staging import stage
from b24mw.kit.uow import UnitOfWorkMiddleware
from b24mw.models.base import table_of
from b24mw.models.couriers import Courier


def _app(db: Database) -> FastAPI:
    app = FastAPI()
    app.state.db = db
    install_problem_handlers(app)

    @app.post("/api/v1/couriers/{cid}", status_code=201)
    async def create(
        cid: str, session: WriteSessionDep, fail: bool = False, staged: bool = False
    ) -> dict[str, str]:
        if staged:
            # Written only by the commit (kit.staging), after the route answered.
            stage(session, table_of(Courier), {"id": cid, "display_name": "Anna"})
            return {"id": cid}
        session.add(Courier(id=cid, display_name="Anna"))
        await session.flush()
        if fail:
            raise Conflict("refused after the row was written")
        return {"id": cid}

    @app.get("/api/v1/couriers/{cid}")
    async def read(cid: str, session: WriteSessionDep) -> dict[str, str]:
        return {"id": cid}

    app.add_middleware(UnitOfWorkMiddleware, database=db, prefix="/api/v1/")
    return app


@pytest.fixture
async def bare(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(db), raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def _couriers(db: Database) -> list[str]:
    async with db.reader() as session:
        return list((await session.scalars(select(Courier.id).order_by(Courier.id))).all())


async def test_write_without_idempotency_key_commits(bare: httpx.AsyncClient, db: Database) -> None:
    response = await bare.post("/api/v1/couriers/c-1")
    assert response.status_code == 201, response.text
    assert response.json() == {"id": "c-1"}
    assert await _couriers(db) == ["c-1"]


async def test_error_answer_rolls_the_unit_back(bare: httpx.AsyncClient, db: Database) -> None:
    response = await bare.post("/api/v1/couriers/c-2", params={"fail": "true"})
    assert response.status_code == 409
    assert await _couriers(db) == []


async def test_failed_commit_is_not_answered_as_success(
    bare: httpx.AsyncClient, db: Database
) -> None:
    # The staged row breaks the primary key at the commit, after the route
    # prepared its 201: the client must never receive that 201.
    await bare.post("/api/v1/couriers/c-3")
    with pytest.raises(IntegrityError):
        await bare.post("/api/v1/couriers/c-3", params={"staged": "true"})
    async with db.reader() as session:
        assert await session.scalar(select(func.count()).select_from(Courier)) == 1


async def test_safe_request_has_no_unit_of_work(bare: httpx.AsyncClient) -> None:
    with pytest.raises(NoUnitOfWork):
        await bare.get("/api/v1/couriers/c-4")
