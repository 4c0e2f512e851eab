"""At realistic table sizes, PostgreSQL answers a filtered report and a KMP4
page from the indexes: ``EXPLAIN`` of the very statements the API runs shows
no sequential scan of ``orders``, ``instant_orders`` or ``task_events``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import ClauseElement, Executable, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from b24mw.kit.db import Database
from b24mw.reports import feed_repository, kmp4, repository
from b24mw.reports.schemas import ReportKind, ReportQuery
from tests.support.config import BACKENDS
from tests.support.postgres import PostgresServer
from tests.support.seeded import seeded_database

ORDERS_PER_KIND = 150_000
COURIERS = 50

if "postgresql" not in BACKENDS:
    pytest.skip("PostgreSQL is not among B24MW_TEST_BACKENDS", allow_module_level=True)


class Explain(Executable, ClauseElement):
    """``EXPLAIN`` of a statement, its parameters bound as the API binds them."""

    inherit_cache = False

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(Explain, "postgresql")
def _explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN " + compiler.process(element.statement, **kw)


SEED = [
    f"""INSERT INTO couriers (id, display_name, is_active, created_at, updated_at)
        SELECT 'c' || n, 'Courier ' || n, true, now(), now()
        FROM generate_series(1, {COURIERS}) AS n""",
    f"""INSERT INTO instant_orders (courier_id, title, customer_name, status, total_amount,
            currency_code, origin, version, created_at, updated_at)
        SELECT 'c' || (1 + n % {COURIERS}), 'Order ' || n, 'Customer ' || n,
            (ARRAY['NEW','READY','ON_ROUTE','DONE','DONE','DONE','REFUSED','FAILED'])[1 + n % 8],
            (n % 5000)::numeric, 'RUB', 'api', 1,
            timestamptz '2025-01-01' + (n * interval '210 seconds'),
            timestamptz '2025-01-01' + (n * interval '210 seconds') + interval '1 hour'
        FROM generate_series(1, {ORDERS_PER_KIND}) AS n""",
    f"""INSERT INTO orders (external_id_1c, courier_id, title, customer_name, address,
            cod_amount, delivery_price, total_amount, currency_code, status, version,
            created_at, updated_at)
        SELECT 'E' || n, 'c' || (1 + n % {COURIERS}), 'Delivery ' || n, 'Customer ' || n,
            'Moscow', 0, 0, (n % 5000)::numeric, 'RUB',
            (ARRAY['NEW','READY','ON_ROUTE','DONE','DONE','DONE','REFUSED','FAILED'])[1 + n % 8],
            1, timestamptz '2025-01-01' + (n * interval '210 seconds'),
            timestamptz '2025-01-01' + (n * interval '210 seconds') + interval '1 hour'
        FROM generate_series(1, {ORDERS_PER_KIND}) AS n""",
    """INSERT INTO task_events (instant_order_id, ts, type, status, payload_json)
        SELECT id, created_at + (k * interval '20 minutes'), 'status',
            CASE WHEN k = 0 THEN 'NEW' ELSE status END, '{}'
        FROM instant_orders, generate_series(0, 1) AS k""",
    """INSERT INTO task_events (order_id, ts, type, status, payload_json)
        SELECT id, created_at + (k * interval '20 minutes'), 'status',
            CASE WHEN k = 0 THEN 'NEW' ELSE status END, '{}'
        FROM orders, generate_series(0, 1) AS k""",
    "ANALYZE",
]


@pytest.fixture(scope="module")
async def big_db(pg_server: PostgresServer) -> AsyncIterator[Database]:
    async for db in seeded_database(pg_server, "explain", SEED):
        yield db


async def plan(db: Database, statement: Any) -> str:
    async with db.engine.connect() as conn:
        return "\n".join(row[0] for row in await conn.execute(Explain(statement)))


def month(m: int) -> dict[str, Any]:
    return {
        "created_from": datetime(2025, m, 1, tzinfo=UTC),
        "created_before": datetime(2025, m + 1, 1, tzinfo=UTC),
    }


REPORTS = {
    "one courier, one month": ReportQuery(courier_id="c7", **month(3)),
    "two statuses, one month": ReportQuery(statuses=("DONE", "REFUSED"), **month(4)),
    "one courier, one status, the year": ReportQuery(courier_id="c9", statuses=("READY",)),
    "deliveries of one courier, a week": ReportQuery(
        kinds=(ReportKind.DELIVERY,),
        courier_id="c3",
        created_from=datetime(2025, 5, 1, tzinfo=UTC),
        created_before=datetime(2025, 5, 8, tzinfo=UTC),
    ),
}


def assert_no_seq_scan(text_plan: str) -> None:
    for table in ("orders", "instant_orders", "task_events"):
        assert f"Seq Scan on {table} " not in text_plan, text_plan


@pytest.mark.parametrize("name", REPORTS)
async def test_filtered_report_uses_the_indexes(big_db: Database, name: str) -> None:
    query = REPORTS[name]
    for kind in query.kinds:
        text_plan = await plan(big_db, repository.report_statement(query, kind))
        assert_no_seq_scan(text_plan)
        table = "instant_orders" if kind is ReportKind.INSTANT else "orders"
        # A courier's rows: by status, or (every status) the courier's own
        # list index of migration 0012.
        indexes = (
            [f"ix_{table}_courier_status_created", f"ix_{table}_courier_created_id"]
            if query.courier_id
            else [f"ix_{table}_status_created"]
        )
        assert any(index in text_plan for index in indexes), text_plan


async def test_kmp4_page_uses_the_change_index(big_db: Database) -> None:
    async with big_db.engine.connect() as conn:
        horizon = await feed_repository.change_horizon(conn)
        last = (await conn.execute(text("SELECT max(change_seq) FROM orders"))).scalar_one()
    position = kmp4.Position(int(last), "delivery", 1000)
    statements = feed_repository.feed_statements(position, horizon, 1000)
    plans = [await plan(big_db, stmt) for stmt in statements]
    for text_plan, index in zip(
        plans, ("ix_instant_orders_change_seq", "ix_orders_change_seq"), strict=True
    ):
        assert_no_seq_scan(text_plan)
        assert index in text_plan, text_plan
