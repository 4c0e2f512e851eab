"""Closed vocabularies: the code sees ``StrEnum`` members, the database keeps
the plain wire values, and its CHECK constraints stay the one guard."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import CheckConstraint, insert, select, text
from sqlalchemy.exc import IntegrityError

from b24mw.kit.db import Database
from b24mw.models.base import Base, EnumString, in_list, table_of
from b24mw.models.enums import JobKind, OutboxStatus, values
from b24mw.models.ops import OutboxJob

OUTBOX = table_of(OutboxJob)


def _enum_columns() -> list[tuple[str, str, EnumString[Any]]]:
    return [
        (table.name, column.name, column.type)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, EnumString)
    ]


def test_every_status_column_is_an_enum_column() -> None:
    typed = {(table, column) for table, column, _ in _enum_columns()}
    assert {
        ("instant_orders", "status"),
        ("instant_orders", "origin"),
        ("orders", "status"),
        ("returns", "status"),
        ("returns", "source"),
        ("return_lines", "quality"),
        ("task_events", "type"),
        ("webhook_inbox", "status"),
        ("outbox", "status"),
        ("outbox", "kind"),
        ("idempotency_key", "state"),
        ("chat_sessions", "status"),
        ("chat_messages", "sender_kind"),
        ("chat_links", "target_kind"),
        ("chat_links", "found_by"),
        ("b24_app_installation", "state"),
        ("archive_manifest", "status"),
        ("integration_log", "direction"),
    } <= typed


@pytest.mark.parametrize(("table", "column", "type_"), _enum_columns())
def test_check_constraint_allows_exactly_the_enum(
    table: str,
    column: str,
    type_: EnumString[Any],
) -> None:
    """An enum member added without a migration of the CHECK would be refused
    by the database at run time; this says so at test time instead."""
    checks = [
        str(c.sqltext)
        for c in Base.metadata.tables[table].constraints
        if isinstance(c, CheckConstraint)
    ]
    assert in_list(column, values(type_.enum)) in checks


async def test_values_read_back_as_members_and_are_stored_as_plain_text(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(OUTBOX).values(kind=JobKind.ONEC_PUSH, status=OutboxStatus.DEAD, payload={})
        )
    async with db.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT kind, status FROM outbox"))).one()
        core = (await conn.execute(select(OUTBOX.c.kind, OUTBOX.c.status))).one()
    assert (type(stored.kind), type(stored.status)) == (str, str)
    assert (stored.kind, stored.status) == ("onec.push", "dead")
    assert core.kind is JobKind.ONEC_PUSH
    assert core.status is OutboxStatus.DEAD
    async with db.sessions() as session:
        job = (await session.execute(select(OutboxJob))).scalar_one()
    assert job.kind is JobKind.ONEC_PUSH
    assert job.status is OutboxStatus.DEAD


async def test_plain_wire_string_is_accepted_on_write(db: Database) -> None:
    """Rows built from JSON or old code paths carry plain strings: same row."""
    async with db.engine.begin() as conn:
        await conn.execute(insert(OUTBOX).values(kind="b24.call", status="pending", payload={}))
    async with db.sessions() as session:
        job = (await session.execute(select(OutboxJob))).scalar_one()
    assert (job.kind, job.status) == (JobKind.B24_CALL, OutboxStatus.PENDING)


async def test_value_outside_the_vocabulary_is_refused_by_the_database(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(insert(OUTBOX).values(kind="b24.call", status="lost", payload={}))
