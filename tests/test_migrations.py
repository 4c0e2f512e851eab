"""Alembic is the only source of schema: it must match the models, run on both
engines, enforce the constraints and downgrade to base."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import IntegrityError

from b24mw.kit.db import Database
from b24mw.migrations import alembic_config, downgrade, upgrade
from b24mw.models.base import Base
from tests.support.config import make_settings
from tests.support.postgres import PostgresServer


@pytest.fixture
async def fresh_db(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Database]:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        name = "mig_" + uuid.uuid4().hex[:8]
        server.createdb(name)
        url = server.url(name)
    db = Database(make_settings(url))
    yield db
    await db.dispose()


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    diffs = compare_metadata(context, Base.metadata)
    # Expression indexes (ts DESC, partial; the trigram indexes of ``q``, which
    # only PostgreSQL has) cannot be compared by reflection.
    expression_indexes = {
        "ix_task_events_task_ts_status",
        "ix_instant_orders_search",
        "ix_orders_search",
    }
    return [d for d in diffs if not (d[0].endswith("_index") and d[1].name in expression_indexes)]


async def test_upgrade_matches_models_and_downgrades_to_base(fresh_db: Database) -> None:
    await upgrade(fresh_db.engine)
    async with fresh_db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert set(Base.metadata.tables) <= tables
    await downgrade(fresh_db.engine, "base")
    async with fresh_db.engine.connect() as conn:
        left = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert left <= {"alembic_version"}
    await upgrade(fresh_db.engine)


CONSTRAINT_VIOLATIONS = [
    "INSERT INTO couriers (id, display_name, phone, is_active, created_at, updated_at)"
    " VALUES ('c', 'C', '89120000000', true, '2026-01-01', '2026-01-01')",
    "INSERT INTO couriers (id, display_name, is_active, created_at, updated_at)"
    " VALUES ('c', '   ', true, '2026-01-01', '2026-01-01')",
    "INSERT INTO instant_orders (title, customer_name, status, total_amount, currency_code,"
    " origin, version, created_at, updated_at) VALUES ('t', 'c', 'LOST', 1, 'RUB', 'api', 1,"
    " '2026-01-01', '2026-01-01')",
    "INSERT INTO instant_orders (title, customer_name, status, total_amount, currency_code,"
    " origin, version, created_at, updated_at) VALUES ('t', 'c', 'NEW', -1, 'RUB', 'api', 1,"
    " '2026-01-01', '2026-01-01')",
]


@pytest.mark.parametrize("statement", CONSTRAINT_VIOLATIONS)
async def test_database_enforces_constraints(db: Database, statement: str) -> None:
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(text(statement))


async def test_return_line_checks(db: Database) -> None:
    rid = uuid.uuid4()
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO returns (id, source, courier_id, status, version, created_at,"
                " updated_at) VALUES (:id, 'widget', 'c', 'pending', 1, '2026-01-01', '2026-01-01')"
            ),
            {"id": rid.hex if db.is_sqlite else rid},
        )
    for qty, reason in ((0, "broken"), (1, "  ")):
        with pytest.raises(IntegrityError):
            async with db.engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO return_lines (return_id, line_no, sku, qty, quality,"
                        " reason_code, photos) VALUES (:rid, 1, 's', :qty, 'new', :reason, '[]')"
                    ),
                    {"rid": rid.hex if db.is_sqlite else rid, "qty": qty, "reason": reason},
                )


async def test_one_order_per_task_and_courier(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO couriers (id, display_name, is_active, created_at, updated_at)"
                " VALUES ('c', 'C', true, '2026-01-01', '2026-01-01')"
            )
        )
    insert = text(
        "INSERT INTO instant_orders (courier_id, task_id_b24, title, customer_name, status,"
        " total_amount, currency_code, origin, version, created_at, updated_at) VALUES"
        " ('c', 7, 't', 'c', 'NEW', 10, 'RUB', 'api', 1, '2026-01-01', '2026-01-01')"
    )
    async with db.engine.begin() as conn:
        await conn.execute(insert)
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(insert)


async def test_correlation_id_unique_when_present(db: Database) -> None:
    insert = text(
        "INSERT INTO task_events (ts, type, payload_json, correlation_id)"
        " VALUES ('2026-01-01', 'comment', '{}', :cid)"
    )
    async with db.engine.begin() as conn:
        await conn.execute(insert, {"cid": None})
        await conn.execute(insert, {"cid": None})
        await conn.execute(insert, {"cid": "b24:comment:1"})
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(insert, {"cid": "b24:comment:1"})


def test_history_has_exactly_one_head() -> None:
    # Two heads make plain `alembic upgrade head` fail and leave the next
    # migration's author guessing its parent.
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1
