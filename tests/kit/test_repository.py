"""The repository base: a page's child rows, the time window of every list,
and get/add by key — on both databases."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from b24mw.kit.db import Database
from b24mw.kit.repository import ModelRepository, Repository, in_window
from b24mw.models.base import table_of, utcnow
from b24mw.models.couriers import Courier
from b24mw.models.returns import Return, ReturnLine

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


async def test_children_of_a_page_by_parent_in_line_order(db: Database) -> None:
    with_lines, without = _return(1, [3, 1, 2]), _return(2, [])
    other = _return(3, [1])
    async with db.unit_of_work() as session:
        session.add(Courier(id="c1", display_name="One", is_active=True))
        session.add_all([with_lines, without, other])
    async with db.reader() as session:
        found = await Repository(session).children(LINES, "return_id", [with_lines.id, without.id])
    # Every parent asked for is there, one without children too; no other's.
    assert set(found) == {with_lines.id, without.id}
    assert [line["line_no"] for line in found[with_lines.id]] == [1, 2, 3]
    assert found[without.id] == []
    async with db.reader() as session:
        assert await Repository(session).children(LINES, "return_id", []) == {}


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
