"""Shared fixtures: both database engines, the app and clients.

Helpers (tokens, settings, problem checks, ports) live in ``tests/support/``;
import them from there, never from a conftest or another test module.

Every test that takes ``db`` (or anything built on it) runs once on SQLite and
once on a real PostgreSQL server started here.  The schema comes from the
Alembic migrations, never from ``create_all``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

import b24mw.models  # noqa: F401
from b24mw.app import create_app
from b24mw.kit.db import Database
from b24mw.kit.listing import forget_estimates
from b24mw.migrations import upgrade
from b24mw.models.base import Base
from b24mw.settings import Settings
from tests.support.auth import auth
from tests.support.config import BACKENDS, make_settings
from tests.support.postgres import PostgresServer


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, for tests that shut it down."""
    server = PostgresServer.start()
    try:
        server.createdb("own")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    if backend == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "b24mw.db"
        return f"sqlite+aiosqlite:///{path}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = "b24mw_" + uuid.uuid4().hex[:8]
    server.createdb(name)
    return server.url(name)


@pytest.fixture(scope="session")
async def migrated_db(database_url: str) -> AsyncIterator[Database]:
    db = Database(make_settings(database_url))
    await upgrade(db.engine)
    yield db
    await db.dispose()


async def _wipe(db: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with db.engine.begin() as conn:
        if db.is_sqlite:
            for name in tables:
                await conn.execute(text(f"DELETE FROM {name}"))
        else:
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    forget_estimates()


@pytest.fixture
async def db(migrated_db: Database) -> AsyncIterator[Database]:
    await _wipe(migrated_db)
    yield migrated_db


@pytest.fixture
def settings(db: Database, tmp_path: Path) -> Settings:
    return make_settings(db.url, event_sinks=f"file://{tmp_path}/events.jsonl")


@pytest.fixture
def app(settings: Settings, db: Database) -> FastAPI:
    return create_app(settings, database=db)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def as_role() -> Callable[..., dict[str, str]]:
    return auth
