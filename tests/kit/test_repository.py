"""The repository base: a page with its rows' children, the time window of every list,
and get/add by key — on both databases."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from b24mw.kit.db import Database
from b24mw.kit.listing import Children, Listing, fetch_listed, param
from b24mw.kit.pagination import page_request
from b24mw.kit.repository import ModelRepository, in_window
from b24mw.models.base import table_of, utcnow
from b24mw.models.couriers import Courier
from b24mw.models.returns import Return, ReturnLine
from b24mw.returns.repository import KEYSET
from b24mw.returns.schemas import RETURN_CURSOR

RETURNS, LINES = table_of(Return), table_of(ReturnLine)


class Couriers(ModelRepository[Courier]):
    __slots__ = ()
    model = Courier


def _return(created_minutes_ago: int, lines: list[int]) -> Return:
    created = utcnow() - timedelta(minutes=created_minutes_ago)
    ret = Return(
        id=uuid.uuid4(), source="widget", courier_id="c1", created_at=created, updated_at=created
    )
    # Given out of order: the answer must come in line_no order.
    ret.lines = [
        ReturnLine(line_no=n, sku=f"s{n}", qty=1, quality="new", reason_code="r") for n in lines
    ]
    return ret


async def test_get_and_add_by_primary_key(db: Database) -> None:
    async with db.unit_of_work() as session:
        Couriers(session).add(Courier(id="c1", display_name="One", is_active=True))
    async with db.reader() as session:
        found = await Couriers(session).get("c1")
        assert found is not None and found.display_name == "One"
        assert await Couriers(session).get("c2") is None


async def test_a_page_carries_each_rows_children_in_line_order(db: Database) -> None:
    """On PostgreSQL in the page's own statement, on SQLite one more: the
    same rows either way."""
    with_lines, without = _return(1, [3, 1, 2]), _return(2, [])
    other = _return(3, [1])
    other.courier_id = "c2"
    async with db.unit_of_work() as session:
        session.add(Courier(id="c1", display_name="One", is_active=True))
        session.add(Courier(id="c2", display_name="Two", is_active=True))
        session.add_all([with_lines, without, other])
    mine = select(RETURNS).where(RETURNS.c.courier_id == param(RETURNS.c.courier_id))
    listing = Listing(KEYSET, [mine], children=Children(LINES, "return_id"))
    async with db.reader() as session:
        page = await fetch_listed(
            session, page_request(RETURN_CURSOR), listing, {"courier_id": "c1"}
        )
    # Every row of the page is there, one without children too; no other's.
    assert [row["id"] for row in page.rows] == [with_lines.id, without.id]
    lines = page.rows[0]["lines"]
    assert [line["line_no"] for line in lines] == [1, 2, 3]
    assert {line["sku"] for line in lines} == {"s1", "s2", "s3"}
    assert page.rows[1]["lines"] == []


async def test_the_window_takes_its_start_and_leaves_its_end(db: Database) -> None:
    rets = [_return(minutes, []) for minutes in (30, 20, 10)]
    async with db.unit_of_work() as session:
        session.add(Courier(id="c1", display_name="One", is_active=True))
        session.add_all(rets)
    old, middle, new = (r.created_at for r in rets)

    async def within(since: object, before: object) -> set[uuid.UUID]:
        stmt = in_window(select(RETURNS.c.id), RETURNS.c.created_at, since, before)
        async with db.reader() as session:
            return set((await session.execute(stmt)).scalars())

    ids = [r.id for r in rets]
    assert await within(None, None) == set(ids)
    assert await within(middle, None) == {ids[1], ids[2]}
    assert await within(None, middle) == {ids[0]}
    assert await within(old, new) == {ids[0], ids[1]}
