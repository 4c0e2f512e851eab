"""Lists by cursor and their totals, through the API on both databases
(issue 19): a walk by ``next_cursor`` sees every row once while rows are
added, whatever the filter; a bad cursor is 422 naming ``cursor``; totals are
exact when small or asked for, estimated (PostgreSQL) or absent beyond."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, text

from b24mw.kit.db import Database
from b24mw.kit.pagination import COUNT_SKIPPED_ABOVE, EXACT_COUNT_CAP
from b24mw.models.base import table_of
from b24mw.models.orders import InstantOrder
from tests.support.auth import auth
from tests.support.orders import ORDERS, add_couriers, create_order
from tests.support.problems import assert_problem
from tests.support.statements import statements

RETURNS = "/api/v1/returns"
START = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
async def couriers(db: Database) -> None:
    await add_couriers(db)


async def insert_orders(db: Database, rows: list[tuple[int, str, datetime]]) -> None:
    """Orders (task id, status, created_at) for courier c1, straight into the table."""
    # Through the table's types, so both engines store times as the API does.
    values = [
        {
            "task_id_b24": task,
            "courier_id": "c1",
            "title": "T",
            "customer_name": "C",
            "status": status,
            "total_amount": 1,
            "currency_code": "RUB",
            "origin": "api",
            "version": 1,
            "created_at": at,
            "updated_at": at,
        }
        for task, status, at in rows
    ]
    async with db.unit_of_work() as session:
        await session.execute(insert(table_of(InstantOrder)), values)


async def walk(
    client: httpx.AsyncClient, url: str, params: dict[str, Any], between: Any = None
) -> list[dict[str, Any]]:
    """Every page by cursor; ``between`` runs after each page."""
    seen: list[dict[str, Any]] = []
    query = dict(params)
    for _ in range(100):
        response = await client.get(url, params=query, headers=auth("admin"))
        assert response.status_code == 200, response.text
        body = response.json()
        seen += body["items"]
        assert body["has_next"] == (body["next_cursor"] is not None)
        if not body["has_next"]:
            return seen
        if between is not None:
            await between()
        query = {**params, "cursor": body["next_cursor"]}
        query.pop("page", None)
    raise AssertionError("the walk did not end")


@pytest.mark.usefixtures("couriers")
@pytest.mark.parametrize("statuses", [[], ["NEW"], ["NEW", "READY", "DONE"]])
async def test_a_cursor_walk_sees_every_row_once_while_rows_are_added(
    client: httpx.AsyncClient, db: Database, statuses: list[str]
) -> None:
    cycle = ["NEW", "READY", "DONE", "FAILED"]
    # Ties in created_at (three rows a minute) are ordered by id.
    rows = [(n, cycle[n % 4], START + timedelta(minutes=n // 3)) for n in range(1, 31)]
    await insert_orders(db, rows)
    async with db.reader() as session:
        result = await session.execute(
            text("SELECT id, status FROM instant_orders ORDER BY created_at DESC, id DESC")
        )
        expected = [i for i, status in result.all() if not statuses or status in statuses]
    added = iter(range(1000, 2000))

    async def meanwhile() -> None:
        # A new order, newest of all, after every page; once, one older than all.
        n = next(added)
        rows = [(n, "NEW", datetime.now(UTC))]
        if n == 1000:
            rows.append((1500, "NEW", START - timedelta(days=1)))
        await insert_orders(db, rows)

    params = {"page_size": 4, "status": statuses}
    seen = await walk(client, ORDERS, params, meanwhile)
    ids = [item["id"] for item in seen]
    original = [i for i in ids if i in set(expected)]
    assert original == expected
    assert len(ids) == len(set(ids)), "a row came twice"
    # Rows added before the walk's position never show; older ones, at its end, do.
    tasks = [item["task_id_b24"] for item in seen]
    assert not [t for t in tasks if 1000 <= t < 1500]
    if not statuses or "NEW" in statuses:
        assert [t for t in tasks if t >= 1500]


@pytest.mark.usefixtures("couriers")
async def test_every_page_offers_a_cursor_and_a_page_walk_can_switch_to_it(
    client: httpx.AsyncClient, db: Database
) -> None:
    await insert_orders(db, [(n, "NEW", START + timedelta(minutes=n)) for n in range(1, 11)])
    second = (
        await client.get(ORDERS, params={"page": 2, "page_size": 3}, headers=auth("admin"))
    ).json()
    assert second["page"] == 2 and second["next_cursor"]
    rest = (
        await client.get(
            ORDERS,
            params={"cursor": second["next_cursor"], "page_size": 3},
            headers=auth("admin"),
        )
    ).json()
    third = (
        await client.get(ORDERS, params={"page": 3, "page_size": 3}, headers=auth("admin"))
    ).json()
    assert rest["items"] == third["items"]
    assert rest["page"] is None
    # By cursor the total is not counted unless asked for.
    assert (rest["total_items"], rest["total_pages"]) == (None, None)


@pytest.mark.usefixtures("couriers")
async def test_a_cursor_of_another_list_or_a_made_up_one_is_422_naming_cursor(
    client: httpx.AsyncClient, db: Database
) -> None:
    await insert_orders(db, [(n, "NEW", START + timedelta(minutes=n)) for n in range(1, 4)])
    await create_order(client, courier_id="c1")
    page = (await client.get(ORDERS, params={"page_size": 1}, headers=auth("admin"))).json()
    good = page["next_cursor"]
    raw = json.loads(base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)))

    def encode(payload: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    bad = [
        "not-a-cursor",
        good[:-3],
        encode(["deliveries", *raw[1:]]),  # another list's
        encode([raw[0], raw[1], "17"]),  # an id that is not an integer
        encode([raw[0], "2026-03-01T00:00:00", raw[2]]),  # a time without its offset
        encode([raw[0], raw[1], 2**63]),  # past BIGINT
        encode([raw[0], raw[1]]),
        encode({"after": raw}),
    ]
    for cursor in bad:
        response = await client.get(ORDERS, params={"cursor": cursor}, headers=auth("admin"))
        problem = assert_problem(response, 422)
        assert [e["field"] for e in problem["errors"]] == ["query.cursor"], cursor
    returns = await client.get(RETURNS, params={"cursor": good}, headers=auth("admin"))
    assert [e["field"] for e in assert_problem(returns, 422)["errors"]] == ["query.cursor"]
    both = await client.get(ORDERS, params={"cursor": good, "page": 1}, headers=auth("admin"))
    assert [e["field"] for e in assert_problem(both, 422)["errors"]] == ["query.page"]


@pytest.mark.usefixtures("couriers")
async def test_small_totals_are_exact_and_counting_can_be_skipped(
    client: httpx.AsyncClient, db: Database
) -> None:
    await insert_orders(db, [(n, "NEW", START + timedelta(minutes=n)) for n in range(1, 8)])

    async def get(**params: Any) -> dict[str, Any]:
        response = await client.get(ORDERS, params=params, headers=auth("admin"))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    first = await get(page_size=3)
    assert (first["total_items"], first["total_pages"], first["has_next"]) == (7, 3, True)
    assert first["total_items_estimated"] is False
    last = await get(page_size=3, page=3)
    assert (last["total_items"], last["has_next"], last["next_cursor"]) == (7, False, None)
    beyond = await get(page_size=3, page=9)
    assert (beyond["items"], beyond["total_items"]) == ([], 7)
    assert (await get(page_size=3, count="none"))["total_items"] is None
    by_cursor = await get(page_size=3, cursor=first["next_cursor"], count="exact")
    assert (by_cursor["total_items"], by_cursor["total_pages"]) == (7, 3)


@pytest.mark.usefixtures("couriers")
async def test_a_list_far_past_the_cap_is_not_counted_once_the_planner_was_asked(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Past ``COUNT_SKIPPED_ABOVE`` expected rows the first request counts
    up to the cap and asks the planner; the next ones read the page alone
    and answer the remembered estimate."""
    if db.is_sqlite:
        pytest.skip("SQLite has no planner estimate")
    many = COUNT_SKIPPED_ABOVE + 2_000
    await insert_orders(db, [(n, "DONE", START + timedelta(seconds=n)) for n in range(1, many + 1)])
    async with db.engine.connect() as conn:
        await conn.execute(text("ANALYZE instant_orders"))

    async def first_page() -> tuple[dict[str, Any], list[str]]:
        with statements(db) as sent:
            response = await client.get(ORDERS, headers=auth("admin"))
        assert response.status_code == 200, response.text
        return response.json(), [s for s in sent if "instant_orders" in s]

    counted, first = await first_page()
    assert any("count(" in s for s in first) and any(s.startswith("EXPLAIN") for s in first)
    assert counted["total_items_estimated"] is True
    again, second = await first_page()
    assert len(second) == 1, second  # the page alone (its lines are another table)
    assert not any("count(" in s or s.startswith("EXPLAIN") for s in second), second
    assert again["items"] == counted["items"] and again["has_next"]
    assert again["total_items_estimated"] is True
    assert COUNT_SKIPPED_ABOVE < again["total_items"] <= many * 2
    # A filter the planner expects few rows of is still counted.
    with statements(db) as sent:
        small = await client.get(ORDERS, params={"status": "NEW"}, headers=auth("admin"))
    assert small.json()["total_items"] == 0
    assert not any(s.startswith("EXPLAIN") for s in sent)


@pytest.mark.usefixtures("couriers")
async def test_a_large_total_is_estimated_on_postgresql_and_exact_when_asked(
    client: httpx.AsyncClient, db: Database
) -> None:
    many = EXACT_COUNT_CAP + 500
    await insert_orders(db, [(n, "DONE", START + timedelta(seconds=n)) for n in range(1, many + 1)])
    if not db.is_sqlite:
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE instant_orders"))
    default = (await client.get(ORDERS, headers=auth("admin"))).json()
    exact = (await client.get(ORDERS, params={"count": "exact"}, headers=auth("admin"))).json()
    assert (exact["total_items"], exact["total_items_estimated"]) == (many, False)
    assert exact["total_pages"] == -(-many // 20)
    if db.is_sqlite:
        # No planner estimate to give: the total is left out.
        assert (default["total_items"], default["total_items_estimated"]) == (None, False)
    else:
        assert default["total_items_estimated"] is True
        # The planner's estimate, never below what was counted (the cap).
        assert EXACT_COUNT_CAP < default["total_items"] <= many * 2
    assert len(default["items"]) == 20 and default["has_next"]


PAGING = ("page", "page_size", "cursor", "count")


async def test_every_paged_list_documents_its_paging_parameters(
    client: httpx.AsyncClient,
) -> None:
    # The paging parameters are read from the query string by hand (not
    # declared to FastAPI), so the document must still show them, once each.
    spec = (await client.get("/openapi.json")).json()
    paged = {
        path: [p["name"] for p in op.get("parameters", []) if p["name"] in PAGING]
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method == "get" and any(p["name"] == "cursor" for p in op.get("parameters", []))
    }
    for path in (RETURNS, ORDERS, f"{ORDERS}/{{order_id}}/events", "/api/v1/admin/dlq"):
        assert paged.get(path) == list(PAGING), path
    assert all(names == list(PAGING) for names in paged.values()), paged
    size = next(
        p
        for p in spec["paths"][RETURNS]["get"]["parameters"]
        if p["name"] == "page_size" and p["in"] == "query"
    )
    assert (size["schema"]["minimum"], size["schema"]["maximum"]) == (1, 100)
    one_order = spec["paths"][f"{ORDERS}/{{order_id}}"]["get"]["parameters"]
    assert [p["name"] for p in one_order] == ["order_id"], "a single read is not paged"


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"page_size": "100"}, []),
        ({"page_size": " 7 ", "page": "+2"}, []),
        ({"page_size": "101"}, ["query.page_size"]),
        (
            {"page": "0", "page_size": "x", "count": "all"},
            ["query.page", "query.page_size", "query.count"],
        ),
        ({"page": ""}, ["query.page"]),
        ({"page": "1.5"}, ["query.page"]),
        ({"page": "٣"}, ["query.page"]),  # a digit, but not an ASCII one
        ({"page": str(2**64)}, ["query.page"]),
        ({"cursor": ""}, ["query.cursor"]),
        ({"cursor": "x" * 513}, ["query.cursor"]),
        ({"count": "EXACT"}, ["query.count"]),
        ({"page": "200", "page_size": "100"}, ["query.page"]),
        # Read before FastAPI reports its own: a bad filter beside is not named.
        ({"page": "0", "status": "bogus"}, ["query.page"]),
        ({"status": "bogus"}, ["query.status.0"]),
    ],
)
async def test_paging_parameters_are_checked_like_any_other(
    client: httpx.AsyncClient, params: dict[str, str], fields: list[str]
) -> None:
    response = await client.get(RETURNS, params=params, headers=auth("admin"))
    if not fields:
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["page_size"] == int(params["page_size"])
        return
    problem = assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == fields
