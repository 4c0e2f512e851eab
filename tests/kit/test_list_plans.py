"""Every list answers from an index, whatever the table's size (issue 19):
``EXPLAIN`` of the statements the API runs for each list, its filters and a
deep cursor shows no sequential scan on PostgreSQL.

Seeded with 200,000 rows per list table (not a million, to keep the test near
half a minute) and ``ANALYZE``d.  The plans cannot change between 200,000 and
a million rows: a page is ``LIMIT 21`` in index order, and already at
200,000 rows reading and sorting the table costs the planner thousands of
times what walking 21 index entries does, so the choice only grows firmer
with more rows (``bench/reads.py`` measures the same lists at a million).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Select, text

from b24mw.couriers import repository as couriers
from b24mw.couriers.schemas import COURIER_CURSOR
from b24mw.crm import repository as crm_repository
from b24mw.crm.schemas import DEAL_CURSOR, LEAD_CURSOR
from b24mw.deliveries import repository as deliveries
from b24mw.deliveries.schemas import DELIVERY_CURSOR, DELIVERY_EVENTS_CURSOR
from b24mw.kit.db import Database
from b24mw.kit.listing import Explain, Keyset, Listing, Shape, children_statement, page_values
from b24mw.kit.pagination import Count, CursorKey, PageRequest, page_request
from b24mw.models.base import table_of
from b24mw.models.orders import Delivery, DeliveryLine, InstantOrder, InstantOrderLine
from b24mw.orders import repository as lists
from b24mw.orders.schemas import OrderFilter
from b24mw.outbox import dlq
from b24mw.outbox import repository as outbox
from b24mw.returns import repository as returns
from b24mw.returns.schemas import RETURN_CURSOR
from b24mw.ww import repository as ww
from b24mw.ww.schemas import ORDER_CURSOR, ORDER_EVENTS_CURSOR
from tests.support.config import BACKENDS
from tests.support.postgres import PostgresServer
from tests.support.seeded import seeded_database

if "postgresql" not in BACKENDS:
    pytest.skip("PostgreSQL is not among B24MW_TEST_BACKENDS", allow_module_level=True)

PG = "postgresql"
ROWS = 200_000
COURIERS = 20_000  # the directory too is listed from its index
STATUSES = "ARRAY['NEW','READY','ON_ROUTE','DONE','DONE','DONE','REFUSED','FAILED']"
CREATED = "timestamptz '2025-01-01' + (n * interval '150 seconds')"
SEED = [
    f"""INSERT INTO couriers (id, display_name, is_active, created_at, updated_at)
        SELECT 'c' || n, 'Courier ' || n, true, now(), now()
        FROM generate_series(1, {COURIERS}) AS n""",
    f"""INSERT INTO returns (id, source, courier_id, task_id_b24, status, version,
            created_at, updated_at)
        SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(n), 12, '0'))::uuid, 'widget',
            'c' || (1 + n % 50), n,
            (ARRAY['pending','accepted','accepted','rejected','cancelled'])[1 + n % 5],
            1, {CREATED}, {CREATED}
        FROM generate_series(1, {ROWS}) AS n""",
    """INSERT INTO return_lines (return_id, line_no, sku, qty, quality, reason_code, photos)
        SELECT id, 1, 'SKU', 1, 'defect', 'broken', '[]' FROM returns""",
    f"""INSERT INTO instant_orders (task_id_b24, courier_id, title, customer_name, status,
            total_amount, currency_code, origin, version, created_at, updated_at)
        SELECT n, 'c' || (1 + n % 50), 'Order ' || n, 'Customer ' || n,
            ({STATUSES})[1 + n % 8], 100, 'RUB', 'api', 1, {CREATED}, {CREATED}
        FROM generate_series(1, {ROWS}) AS n""",
    """INSERT INTO instant_order_lines (order_id, line_no, sku, name, qty, price)
        SELECT id, 1, 'SKU', 'Item', 1, 100 FROM instant_orders""",
    f"""INSERT INTO orders (external_id_1c, task_id_b24, courier_id, title, customer_name,
            address, cod_amount, delivery_price, total_amount, currency_code, status, version,
            created_at, updated_at)
        SELECT 'E' || n, n, 'c' || (1 + n % 50), 'Delivery ' || n, 'Customer ' || n,
            'Moscow', 0, 0, 100, 'RUB', ({STATUSES})[1 + n % 8], 1, {CREATED}, {CREATED}
        FROM generate_series(1, {ROWS}) AS n""",
    """INSERT INTO order_lines (order_id, line_no, sku, name, qty, price)
        SELECT id, 1, 'SKU', 'Item', 1, 100 FROM orders""",
    """INSERT INTO task_events (task_id_b24, instant_order_id, ts, type, status, payload_json)
        SELECT id, id, created_at + k * interval '5 minutes', 'status', status, '{}'
        FROM instant_orders, generate_series(0, 1) AS k""",
    """INSERT INTO task_events (task_id_b24, order_id, ts, type, status, payload_json)
        SELECT task_id_b24, id, created_at + k * interval '5 minutes', 'status', status, '{}'
        FROM orders, generate_series(0, 1) AS k""",
    f"""INSERT INTO outbox (kind, payload, status, attempts, next_attempt_at, created_at,
            updated_at, finished_at, error_history, outcome_unknown)
        SELECT (ARRAY['b24.call','event.publish','onec.push'])[1 + n % 3], '{{}}',
            CASE WHEN n % 40 = 0 THEN 'dead' ELSE 'done' END, 1, {CREATED}, {CREATED},
            {CREATED}, {CREATED}, '[]', false
        FROM generate_series(1, {ROWS}) AS n""",
    f"""INSERT INTO crm_deals (id, title, category_id, stage_id, stage_semantic, amount,
            currency_code, assigned_by_id, closed, b24_updated_at, raw, read_at,
            created_at, updated_at)
        SELECT n, 'Deal ' || n, n % 3, (ARRAY['NEW','PREPARATION','WON','LOSE'])[1 + n % 4],
            'P', 100, 'RUB', 1 + n % 50, false, {CREATED}, '{{}}', {CREATED}, {CREATED},
            {CREATED}
        FROM generate_series(1, {ROWS}) AS n""",
    f"""INSERT INTO crm_leads (id, title, status_id, status_semantic, amount, currency_code,
            assigned_by_id, closed, b24_updated_at, raw, read_at, created_at, updated_at)
        SELECT n, 'Lead ' || n, (ARRAY['NEW','IN_PROCESS','CONVERTED'])[1 + n % 3], 'P', 100,
            'RUB', 1 + n % 50, false, {CREATED}, '{{}}', {CREATED}, {CREATED}, {CREATED}
        FROM generate_series(1, {ROWS}) AS n""",
    "ANALYZE",
]
TABLES = (
    "couriers",
    "returns",
    "return_lines",
    "instant_orders",
    "instant_order_lines",
    "orders",
    "order_lines",
    "task_events",
    "outbox",
    "crm_deals",
    "crm_leads",
)


@pytest.fixture(scope="module")
async def big_db(pg_server: PostgresServer) -> AsyncIterator[Database]:
    async for db in seeded_database(pg_server, "lists", SEED):
        yield db


async def plan(db: Database, statement: Any, params: dict[str, Any] | None = None) -> str:
    async with db.engine.connect() as conn:
        rows = await conn.execute(Explain(statement), params or {})
        return "\n".join(row[0] for row in rows)


def assert_no_seq_scan(text_plan: str) -> None:
    for table in TABLES:
        assert f"Seq Scan on {table} " not in text_plan, text_plan


async def deep_key(db: Database, table: str, order: str) -> tuple[Any, ...]:
    """The sort key half-way down a list: where a cursor walk would stand."""
    async with db.engine.connect() as conn:
        row = await conn.execute(
            text(f"SELECT * FROM {table} ORDER BY {order} OFFSET {ROWS // 2} LIMIT 1")
        )
        return tuple(row.mappings().one().values())


def requests(key: CursorKey, deep: tuple[Any, ...]) -> dict[str, PageRequest]:
    """A first page with the default total, a later page, and a page far down
    by cursor, with and without a total.  (``count=exact`` is left out: it
    reads every matching row by definition, which is why it must be asked for.)"""
    return {
        "first page": page_request(key),
        "page 50": page_request(key, page=50),
        "deep cursor": PageRequest(None, 20, deep, Count.NONE, key),
        "deep cursor with total": PageRequest(None, 20, deep, Count.ESTIMATE, key),
    }


MARCH: dict[str, Any] = {"created_from": datetime(2025, 3, 1, tzinfo=UTC)}
APRIL: dict[str, Any] = {"created_to": datetime(2025, 4, 1, tzinfo=UTC)}
ORDER_FILTERS = {
    "everything": OrderFilter(),
    "one status": OrderFilter(statuses=["READY"]),
    "two statuses": OrderFilter(statuses=["READY", "FAILED"]),
    "a courier (their own list)": OrderFilter(courier_id="c7"),
    "a courier, two statuses": OrderFilter(courier_id="c7", statuses=["NEW", "DONE"]),
    "a month": OrderFilter(**MARCH, **APRIL),
    "a status, a month": OrderFilter(statuses=["DONE"], **MARCH, **APRIL),
    "a courier, a month": OrderFilter(courier_id="c7", **MARCH, **APRIL),
    "search by text": OrderFilter(q="customer 12345"),
    "search by id": OrderFilter(q="123456"),
}


async def check(
    db: Database,
    branches: list[Select[Any]] | Listing,
    keyset: Keyset,
    key: CursorKey,
    deep: Any,
    values: dict[str, Any] | None = None,
) -> None:
    """The statements the API runs for each kind of request (``branches``
    with their values bound, or a prepared ``Listing`` and its ``values``)."""
    listing = branches if isinstance(branches, Listing) else Listing(keyset, branches)
    for name, request in requests(key, deep).items():
        params = {**(values or {}), **page_values(keyset, request)}
        text_plan = await plan(db, listing.statement(Shape.of(request)), params)
        assert_no_seq_scan(text_plan)
        assert "Index" in text_plan, (name, text_plan)


@pytest.mark.parametrize("name", ORDER_FILTERS)
async def test_order_lists_walk_an_index(big_db: Database, name: str) -> None:
    filters = ORDER_FILTERS[name]
    order = "created_at DESC, id DESC"
    for table, (listing, values), key in (
        (table_of(InstantOrder), ww.OrderRepository.listing(filters), ORDER_CURSOR),
        (table_of(Delivery), deliveries.DeliveryRepository.listing(filters), DELIVERY_CURSOR),
    ):
        deep = await deep_key(big_db, f"(SELECT created_at, id FROM {table.name}) AS t", order)
        await check(big_db, listing, lists.order_keyset(table), key, deep, values)


RETURN_FILTERS: dict[str, dict[str, Any]] = {
    "everything": {},
    "pending": {"statuses": ["pending"]},
    "decided": {"statuses": ["accepted", "rejected", "cancelled"]},
    "a courier": {"courier_id": "c7"},
    "a courier's pending": {"courier_id": "c7", "statuses": ["pending"]},
    "a month": {
        "created_from": datetime(2025, 3, 1, tzinfo=UTC),
        "created_to": datetime(2025, 3, 31, tzinfo=UTC),
    },
}


@pytest.mark.parametrize("name", RETURN_FILTERS)
async def test_returns_list_walks_an_index(big_db: Database, name: str) -> None:
    given: dict[str, Any] = {
        "statuses": [],
        "courier_id": None,
        "created_from": None,
        "created_to": None,
        **RETURN_FILTERS[name],
    }
    deep = await deep_key(
        big_db, "(SELECT created_at, id FROM returns) AS t", "created_at DESC, id DESC"
    )
    listing, values = returns.listing(**given)
    await check(big_db, listing, returns.KEYSET, RETURN_CURSOR, deep, values)


async def test_history_couriers_and_dead_letters_walk_an_index(big_db: Database) -> None:
    event = (datetime(2025, 6, 1, tzinfo=UTC), 10)
    for listing, key in (
        (ww.OrderRepository.history_listing, ORDER_EVENTS_CURSOR),
        (deliveries.DeliveryRepository.history_listing, DELIVERY_EVENTS_CURSOR),
    ):
        await check(big_db, listing, lists.EVENT_KEYSET, key, event, {"id": 1234})
    nothing: dict[str, Any] = {"q": None, "only_id": None, "b24_user_id": None, "is_active": None}
    # The directory's q is a scan by design: a few thousand rows at most.
    for given in ({}, {"is_active": True}, {"b24_user_id": 7}):
        branches = couriers.list_branches(**{**nothing, **given})
        await check(big_db, branches, couriers.KEYSET, COURIER_CURSOR, ("c5000",))
    dead = (datetime(2025, 6, 1, tzinfo=UTC), 5000)
    for kind in (None, "b24.call"):
        await check(big_db, outbox.dead_branches(kind), outbox.DEAD_KEYSET, dlq.DLQ_CURSOR, dead)


async def test_lines_of_a_page_come_from_their_index(big_db: Database) -> None:
    ids = {"ids": [uuid.UUID(int=n) for n in range(1, 21)]}
    assert_no_seq_scan(await plan(big_db, children_statement(returns.LINES, "return_id", PG), ids))
    for lines in (table_of(InstantOrderLine), table_of(DeliveryLine)):
        statement = children_statement(lines, "order_id", PG)
        text_plan = await plan(big_db, statement, {"ids": list(range(1, 21))})
        assert_no_seq_scan(text_plan)


async def test_crm_lists_walk_an_index(big_db: Database) -> None:
    deep = (datetime(2025, 6, 1, tzinfo=UTC), 5000)
    for given in (
        {},
        {"assigned_by_id": 7},
        {"linked": True},
        {"modified_from": datetime(2025, 3, 1, tzinfo=UTC)},
    ):
        branches = crm_repository.deal_branches(crm_repository.DealFilter(**given))
        await check(big_db, branches, crm_repository.DEALS_KEYSET, DEAL_CURSOR, deep)
    leads = crm_repository.lead_branches(crm_repository.LeadFilter())
    await check(big_db, leads, crm_repository.LEADS_KEYSET, LEAD_CURSOR, deep)
