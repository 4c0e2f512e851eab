"""Bad input is a 422 naming every offending field, never a 500, and leaves nothing behind."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from b24mw.kit.auth import Actor, Role
from b24mw.kit.db import Database
from b24mw.kit.errors import ValidationFailed
from b24mw.kit.problems import problem_body
from b24mw.models.enums import ItemQuality, ReturnSource
from b24mw.outbox import Outbox
from b24mw.returns import service
from b24mw.returns.flows import ReturnChannels
from b24mw.returns.schemas import ReturnCreate, ReturnLineCreate, luhn_ok
from b24mw.settings import Settings
from tests.returns.helpers import URL, jobs, line, return_body
from tests.support.auth import auth
from tests.support.problems import assert_problem

pytestmark = pytest.mark.usefixtures("couriers")


async def _post(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(URL, headers=auth("admin"), json=body)
    return assert_problem(response, 422)


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("source", return_body(source="email"), "source"),
    ("source missing", {k: v for k, v in return_body().items() if k != "source"}, "source"),
    ("items empty", return_body(items=[]), "items"),
    ("items missing", {k: v for k, v in return_body().items() if k != "items"}, "items"),
    ("qty zero", return_body(items=[line(qty=0)]), "items.0.qty"),
    ("qty negative", return_body(items=[line(qty=-3)]), "items.0.qty"),
    ("qty fraction", return_body(items=[line(qty=1.5)]), "items.0.qty"),
    ("qty as text", return_body(items=[line(qty="2")]), "items.0.qty"),
    ("qty as bool", return_body(items=[line(qty=True)]), "items.0.qty"),
    ("quality", return_body(items=[line(quality="broken")]), "items.0.quality"),
    ("reason blank", return_body(items=[line(reason_code="   ")]), "items.0.reason_code"),
    ("reason empty", return_body(items=[line(reason_code="")]), "items.0.reason_code"),
    ("reason missing", return_body(items=[line(reason_code=None)]), "items.0.reason_code"),
    ("photo negative", return_body(items=[line(photos=[-1])]), "items.0.photos.0"),
    ("photo text", return_body(items=[line(photos=[5, "abc"])]), "items.0.photos.1"),
    ("photo float", return_body(items=[line(photos=[1.5])]), "items.0.photos.0"),
    ("photos not list", return_body(items=[line(photos="12")]), "items.0.photos"),
    ("imei short", return_body(items=[line(imei="49015420323751")]), "items.0.imei"),
    ("imei letters", return_body(items=[line(imei="49015420323751A")]), "items.0.imei"),
    ("imei luhn", return_body(items=[line(imei="490154203237519")]), "items.0.imei"),
    ("unknown top field", return_body(colour="red"), "colour"),
    ("unknown line field", return_body(items=[line(price="10.00")]), "items.0.price"),
    ("task id zero", return_body(task_id_b24=0), "task_id_b24"),
    ("courier id format", return_body(courier_id="bad id!"), "courier_id"),
]


@pytest.mark.parametrize(("body", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_each_rule_names_its_field(
    client: httpx.AsyncClient, db: Database, body: dict[str, Any], field: str
) -> None:
    problem = await _post(client, body)
    assert field in {e["field"] for e in problem["errors"]}, problem["errors"]
    assert await jobs(db) == []


async def test_every_offending_field_is_listed_at_once(client: httpx.AsyncClient) -> None:
    body = return_body(
        source="fax",
        surprise=1,
        items=[
            line(qty=0, quality="mint", reason_code=" ", photos=["x"], imei="123"),
            line(sku="", qty=1),
        ],
    )
    problem = await _post(client, body)
    assert {e["field"] for e in problem["errors"]} == {
        "source",
        "surprise",
        "items.0.qty",
        "items.0.quality",
        "items.0.reason_code",
        "items.0.photos.0",
        "items.0.imei",
        "items.1.sku",
    }


async def test_photo_ids_accept_numeric_strings_and_answer_integers(
    client: httpx.AsyncClient,
) -> None:
    body = return_body(items=[line(photos=[7, "8", " 9 "], imei=None)])
    response = await client.post(URL, headers=auth("admin"), json=body)
    assert response.status_code == 201, response.text
    assert response.json()["items"][0]["photos"] == [7, 8, 9]


async def test_optional_fields_may_be_left_out(client: httpx.AsyncClient) -> None:
    body = {
        "source": "warehouse",
        "courier_id": "c-1",
        "items": [{"sku": "S", "qty": 1, "quality": "unknown", "reason_code": "r"}],
    }
    response = await client.post(URL, headers=auth("admin"), json=body)
    assert response.status_code == 201, response.text
    item = response.json()["items"][0]
    assert item["photos"] == [] and item["imei"] is None and item["serial"] is None


async def test_patch_validation(client: httpx.AsyncClient) -> None:
    created = (await client.post(URL, headers=auth("admin"), json=return_body())).json()
    url = f"{URL}/{created['id']}"
    for body, field in [
        ({}, "body"),
        ({"status": "lost"}, "status"),
        ({"status": None}, "body"),
        ({"status": "accepted", "priority": 1}, "priority"),
        ({"manager_id": ""}, "manager_id"),
    ]:
        problem = assert_problem(await client.patch(url, headers=auth("1c", "o"), json=body), 422)
        assert field in {e["field"] for e in problem["errors"]}, (body, problem)
    fetched = await client.get(url, headers=auth("admin"))
    assert fetched.json()["status"] == "pending"


async def test_database_check_maps_to_422_when_api_validation_is_bypassed(
    db: Database, settings: Settings
) -> None:
    """Whatever slips past the schemas (another caller, a future bug), the database
    check still refuses it, and the client sees a 422 naming the field, not a 500."""
    unchecked = ReturnCreate.model_construct(
        source=ReturnSource.WIDGET,
        courier_id="c-1",
        order_id_1c=None,
        task_id_b24=None,
        comment=None,
        items=[
            ReturnLineCreate.model_construct(
                sku="S",
                qty=1,
                quality=ItemQuality.NEW,
                reason_code="   ",
                reason_note=None,
                photos=[],
                imei=None,
                serial=None,
            )
        ],
    )
    channels = ReturnChannels.from_settings(settings, Outbox(settings))
    actor = Actor(sub="alice", roles=frozenset({Role.ADMIN}))
    with pytest.raises(ValidationFailed) as caught:
        async with db.unit_of_work() as session:
            await service.create(session, channels, actor, unchecked)
    problem = problem_body(caught.value, "rid")
    assert problem["status"] == 422
    assert problem["errors"] == [
        {"field": "items.reason_code", "message": "must not be blank", "code": "validation.format"}
    ]
    assert await jobs(db) == []


@given(st.text(alphabet="0123456789", min_size=14, max_size=14))
def test_exactly_one_check_digit_completes_an_imei(body: str) -> None:
    completions = [d for d in "0123456789" if luhn_ok(body + d)]
    assert len(completions) == 1
