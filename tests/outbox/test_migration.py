"""0002 applies and reverts cleanly on both engines (SQLite through batch mode)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from b24mw.kit.db import Database
from b24mw.migrations import downgrade, upgrade
from tests.support.config import make_settings


async def _columns(engine: AsyncEngine, table: str) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns(table)})


async def _indexes(engine: AsyncEngine, table: str) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda c: {str(ix["name"]) for ix in inspect(c).get_indexes(table)}
        )


async def test_upgrade_downgrade_upgrade(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        name = "mig_" + uuid.uuid4().hex[:8]
        server.createdb(name)
        url = server.url(name)
    db = Database(make_settings(url))
    try:
        await upgrade(db.engine, "0002")
        added = {"outcome_unknown", "discarded_at", "discarded_by"}
        assert added <= await _columns(db.engine, "outbox")
        assert "ix_outbox_status_lease_until" in await _indexes(db.engine, "outbox")
        assert {"limited_at", "limited_total"} <= await _columns(db.engine, "rate_limit_state")

        await downgrade(db.engine, "0001")
        assert not added & await _columns(db.engine, "outbox")
        assert "ix_outbox_status_lease_until" not in await _indexes(db.engine, "outbox")
        assert "limited_total" not in await _columns(db.engine, "rate_limit_state")
        # 0001's own indexes survive SQLite's table rebuild.
        assert "ix_outbox_status_next" in await _indexes(db.engine, "outbox")

        await upgrade(db.engine, "0002")
        assert added <= await _columns(db.engine, "outbox")
    finally:
        await db.dispose()
