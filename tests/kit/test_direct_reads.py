"""Statement reads on PostgreSQL run through asyncpg itself
(``kit.direct_reads``, issue 19): every statement the read routes send gives
the rows SQLAlchemy gives — same names, values and types (enums, UTC times,
exact decimals, UUIDs, JSON) — while SQLAlchemy executes none of them; what
the shortcut cannot take (SQLite, a session's transaction, an expanding
``IN``) and every error go through SQLAlchemy as before."""

from __future__ import annotations

import gc
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Integer, String, bindparam, cast, func, select
from sqlalchemy.exc import DBAPIError

from b24mw.kit import direct_reads
from b24mw.kit.db import Database
from b24mw.kit.problems import is_database_unavailable
from b24mw.models.enums import OrderStatus
from b24mw.models.orders import InstantOrder
from b24mw.models.returns import Return, ReturnLine
from b24mw.ww.repository import _SNAPSHOT
from tests.support.auth import auth
from tests.support.orders import ORDERS, add_couriers, create_order, walk_to
from tests.support.statements import sqlalchemy_statements, statements

START = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
async def seeded(db: Database, client: httpx.AsyncClient) -> AsyncIterator[dict[str, str]]:
    """Reads worth comparing: a return with lines (enums, JSON, UUID), an
    order with lines and a history (decimals, JSON payloads, UTC times)."""
    await add_couriers(db)
    return_id = uuid.uuid4()
    async with db.unit_of_work() as session:
        session.add(
            Return(
                id=return_id,
                source="widget",
                courier_id="c1",
                status="pending",
                comment="Ünïcode — and quotes ' \"",
                created_at=START,
                updated_at=START + timedelta(microseconds=7),
                lines=[
                    ReturnLine(
                        line_no=n,
                        sku=f"SKU-{n}",
                        qty=n,
                        quality="defect",
                        reason_code="broken",
                        photos=[100 + n, 200 + n],
                    )
                    for n in (1, 2)
                ],
            )
        )
    order = await create_order(client, courier_id="c1")
    await walk_to(client, f"{ORDERS}/{order['id']}", OrderStatus.ON_ROUTE)
    yield {"return": str(return_id), "order": str(order["id"])}


def reads(ids: dict[str, str]) -> list[str]:
    order, return_id = ids["order"], ids["return"]
    return [
        f"{ORDERS}/{order}",
        f"{ORDERS}/{order}/events",
        f"{ORDERS}/{order}/events?page_size=2&count=exact",
        f"{ORDERS}/987654",
        f"{ORDERS}?status=ON_ROUTE&count=exact",
        f"{ORDERS}?page=2&page_size=1",
        f"/api/v1/returns/{return_id}",
        "/api/v1/returns?status=pending&courier_id=c1",
        "/api/v1/returns?count=exact&page_size=1",
    ]


async def test_read_routes_give_sqlalchemys_rows_without_sqlalchemy(
    db: Database,
    client: httpx.AsyncClient,
    seeded: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = auth("admin")
    # A statement's first two reads go through SQLAlchemy, and the second's
    # answer shapes the shortcut's plan; the third read takes the shortcut.
    for _ in range(2):
        for path in reads(seeded):
            assert (await client.get(path, headers=admin)).status_code in (200, 404)

    # Every plan the read routes take, with its parameters.
    asked: list[tuple[Any, dict[str, Any]]] = []
    original = direct_reads._driver_rows

    async def spy(conn: Any, plan: Any, params: Any) -> Any:
        asked.append((plan, dict(params)))
        return await original(conn, plan, params)

    monkeypatch.setattr(direct_reads, "_driver_rows", spy)
    answers = {}
    with sqlalchemy_statements(db) as sent:
        for path in reads(seeded):
            answer = await client.get(path, headers=admin)
            assert answer.status_code in (200, 404), answer.text
            answers[path] = answer.json()
    assert answers[f"{ORDERS}/{seeded['order']}"]["status"] == "ON_ROUTE"
    assert len(answers[f"{ORDERS}/{seeded['order']}/events"]["items"]) >= 3
    lines = answers[f"/api/v1/returns/{seeded['return']}"]["items"]
    assert [line["photos"] for line in lines] == [[101, 201], [102, 202]]
    if db.is_sqlite:
        assert asked == [] and sent, "SQLite reads through SQLAlchemy"
        return
    assert sent == [], "a statement read went through SQLAlchemy"
    assert len({id(plan) for plan, _ in asked}) >= 6

    # The same statements through SQLAlchemy: the same names, values, types.
    statements = {id(plan): statement for statement, plan in direct_reads._PLANS.items()}
    reads_ = await db.statement_reads()
    try:
        for plan, params in asked:
            direct = await original(reads_.connection, plan, params)
            result = await reads_.connection.execute(statements[id(plan)], params)
            assert direct.names == list(result.keys())
            expected = [tuple(row) for row in result.all()]
            assert direct.rows == expected
            for got, want in zip(direct.rows, expected, strict=True):
                assert [type(v) for v in got] == [type(v) for v in want]
    finally:
        await reads_.close()


async def test_what_the_shortcut_cannot_take_goes_through_sqlalchemy(
    db: Database, seeded: dict[str, str]
) -> None:
    order_id = int(seeded["order"])
    expanding = select(InstantOrder.id).where(InstantOrder.id.in_([order_id, order_id + 1]))
    reads_ = await db.statement_reads()
    try:
        with sqlalchemy_statements(db) as sent:
            found = await direct_reads.select_rows(
                reads_.connection, expanding.subquery().select(), {}
            )
        assert found.rows == [(order_id,)]
        assert [s for s in sent if s.startswith("SELECT")], "an expanding IN is SQLAlchemy's"
    finally:
        await reads_.close()
    # A session's connection is in its transaction: SQLAlchemy's to begin.
    async with db.reader() as session:
        with sqlalchemy_statements(db) as sent:
            found = await direct_reads.select_rows(session, _SNAPSHOT, {"order_id": order_id})
        assert {row[0] for row in found.rows} == {order_id}
        assert [s for s in sent if s.startswith("SELECT")]


async def test_a_lost_connection_is_reported_and_thrown_away_as_by_sqlalchemy(
    db: Database, seeded: dict[str, str]
) -> None:
    if db.is_sqlite:
        pytest.skip("the shortcut is PostgreSQL's")
    pool = db.engine.sync_engine.pool
    reads_ = await db.statement_reads()
    try:
        pid = await direct_reads.select_rows(reads_.connection, select(func.pg_backend_pid()), {})
        async with db.statements() as other:
            await other.execute(select(func.pg_terminate_backend(pid.scalar())))
        with pytest.raises(DBAPIError) as lost:
            await direct_reads.select_rows(reads_.connection, _SNAPSHOT, {"order_id": 1})
        assert lost.value.connection_invalidated
        assert is_database_unavailable(lost.value)
    finally:
        await reads_.close()
    # The dead connection never went back to the pool: the next read answers.
    reads_ = await db.statement_reads()
    try:
        found = await direct_reads.select_rows(
            reads_.connection, _SNAPSHOT, {"order_id": int(seeded["order"])}
        )
        assert found.rows
    finally:
        await reads_.close()
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_refused_statement_fails_as_it_does_in_sqlalchemy(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("the shortcut is PostgreSQL's (and SQLite casts any text)")
    # The server refuses the value (invalid input syntax for an integer).
    refused = select(cast(bindparam("value", type_=String), Integer))
    reads_ = await db.statement_reads()
    try:
        assert (
            await direct_reads.select_rows(reads_.connection, refused, {"value": "7"})
        ).rows == [(7,)]
        with pytest.raises(DBAPIError) as through_sqlalchemy:
            await reads_.connection.execute(refused, {"value": "seven"})
        with pytest.raises(DBAPIError) as shortcut:
            await direct_reads.select_rows(reads_.connection, refused, {"value": "seven"})
        assert type(shortcut.value) is type(through_sqlalchemy.value)
        assert not is_database_unavailable(shortcut.value)
        assert (
            await direct_reads.select_rows(reads_.connection, refused, {"value": "8"})
        ).rows == [(8,)]
    finally:
        await reads_.close()


async def test_a_statement_is_sent_by_the_driver_once_it_is_read_again(db: Database) -> None:
    reads_ = await db.statement_reads()
    try:
        before, seen = len(direct_reads._PLANS), len(direct_reads._SEEN)
        # Built for one read each (as kit.listing.fetch_page's): never compiled
        # for the driver, and forgotten with the statement.
        for n in range(50):
            found = await direct_reads.select_rows(reads_.connection, select(func.abs(-n)), {})
            assert found.rows == [(n,)]
        gc.collect()
        assert len(direct_reads._PLANS) == before
        # SQLAlchemy's compiled cache keeps one statement of the shape alive.
        assert len(direct_reads._SEEN) <= seen + 1
        kept = select(func.abs(bindparam("value", type_=Integer)))
        with statements(db) as sent:
            for value in (-1, -2, -3, 4):
                found = await direct_reads.select_rows(reads_.connection, kept, {"value": value})
                assert found.rows == [(abs(value),)]
        planned = direct_reads._PLANS.get(kept)
        if db.is_sqlite:
            assert planned is None
        else:
            assert planned is not None
            with sqlalchemy_statements(db) as through_sqlalchemy:
                await direct_reads.select_rows(reads_.connection, kept, {"value": 5})
            assert through_sqlalchemy == []
        assert len(sent) == 4
    finally:
        await reads_.close()
