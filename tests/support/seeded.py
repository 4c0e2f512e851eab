"""A migrated PostgreSQL database filled by SQL statements, for the tests that
read query plans over many rows (EXPLAIN needs realistic table statistics)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence

from sqlalchemy import text

from b24mw.kit.db import Database
from b24mw.migrations import upgrade
from tests.support.config import make_settings
from tests.support.postgres import PostgresServer


async def seeded_database(
    pg_server: PostgresServer, prefix: str, seed: Sequence[str]
) -> AsyncIterator[Database]:
    """A fresh database migrated to head, ``seed`` run in autocommit, then
    disposed after use (drive it as a module-scoped fixture)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    pg_server.createdb(name)
    db = Database(make_settings(pg_server.url(name)))
    await upgrade(db.engine)
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        for statement in seed:
            await conn.execute(text(statement))
    yield db
    await db.dispose()
