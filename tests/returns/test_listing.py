"""GET /returns for 1C and admins: filters, RFC 3339 dates, pagination."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import update

from b24mw.kit.db import Database
from b24mw.models.returns import Return
from tests.returns.helpers import URL, create_return
from tests.support.auth import auth
from tests.support.problems import assert_problem

pytestmark = pytest.mark.usefixtures("couriers")


async def _backdate(db: Database, rid: str, when: datetime) -> None:
    async with db.unit_of_work() as session:
        stmt = update(Return).where(Return.id == uuid.UUID(rid)).values(created_at=when)
        await session.execute(stmt.execution_options(synchronize_session=False))


@pytest.fixture
async def three(client: httpx.AsyncClient, db: Database) -> list[dict]:
    """c-1 pending (Jan), c-1 accepted (Feb), c-2 rejected (Mar)."""
    made = [await create_return(client, "c-1"), await create_return(client, "c-1")]
    made.append(await create_return(client, "c-2"))
    for ret, status in zip(made[1:], ["accepted", "rejected"], strict=True):
        await client.patch(f"{URL}/{ret['id']}", headers=auth("admin"), json={"status": status})
    for month, ret in enumerate(made, start=1):
        await _backdate(db, ret["id"], datetime(2026, month, 15, 12, tzinfo=UTC))
    return made


async def _ids(client: httpx.AsyncClient, **params: str | int | list[str]) -> list[str]:
    response = await client.get(URL, headers=auth("1c", "onec"), params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_newest_first_with_page_shape(client: httpx.AsyncClient, three: list[dict]) -> None:
    response = await client.get(URL, headers=auth("admin"), params={"page_size": 2})
    body = response.json()
    assert [i["id"] for i in body["items"]] == [three[2]["id"], three[1]["id"]]
    assert (body["page"], body["page_size"], body["total_items"]) == (1, 2, 3)
    assert (body["total_pages"], body["has_next"]) == (2, True)
    second = await client.get(URL, headers=auth("admin"), params={"page_size": 2, "page": 2})
    assert [i["id"] for i in second.json()["items"]] == [three[0]["id"]]
    assert second.json()["has_next"] is False


async def test_status_filter_repeats(client: httpx.AsyncClient, three: list[dict]) -> None:
    assert await _ids(client, status="pending") == [three[0]["id"]]
    both = await _ids(client, status=["accepted", "rejected"])
    assert both == [three[2]["id"], three[1]["id"]]


async def test_courier_filter(client: httpx.AsyncClient, three: list[dict]) -> None:
    assert await _ids(client, courier_id="c-2") == [three[2]["id"]]
    assert await _ids(client, courier_id="c-1", status="accepted") == [three[1]["id"]]


async def test_date_range_is_inclusive_rfc3339(
    client: httpx.AsyncClient, three: list[dict]
) -> None:
    feb = await _ids(
        client, created_from="2026-02-15T12:00:00Z", created_to="2026-02-15T15:00:00+03:00"
    )
    assert feb == [three[1]["id"]]
    assert await _ids(client, created_from="2026-02-01T00:00:00Z") == [
        three[2]["id"],
        three[1]["id"],
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "query.status.0"),
        ({"created_from": "2026-02-01"}, "query.created_from"),
        ({"created_from": "2026-02-01T00:00:00"}, "query.created_from"),
        ({"created_to": "yesterday"}, "query.created_to"),
        ({"page_size": 101}, "query.page_size"),
        ({"page": 0}, "query.page"),
        (
            {"created_from": "2026-03-01T00:00:00Z", "created_to": "2026-02-01T00:00:00Z"},
            "query.created_from",
        ),
    ],
)
async def test_bad_filters_are_422(
    client: httpx.AsyncClient, params: dict[str, str | int], field: str
) -> None:
    response = await client.get(URL, headers=auth("admin"), params=params)
    problem = assert_problem(response, 422)
    assert field in {e["field"] for e in problem["errors"]}
