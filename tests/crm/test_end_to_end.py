"""Deals and leads against the emulator: mirrored from events and
reconciliation, linked to deliveries and orders, closed when the delivery ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from b24mw.crm.reconcile import reconcile, refresh_pipelines
from b24mw.kit.db import Database
from b24mw.models.enums import OrderStatus as S
from b24mw.models.history import IntegrationLog
from b24mw.models.ops import OutboxJob
from b24mw.outbox import dlq
from tests.support.auth import auth
from tests.support.orders import DELIVERIES, ORDERS, delivery_body, set_status, walk_to
from tests.support.portal import PERSON, Portal, open_portal

DEALS = "/api/v1/crm/deals"
LEADS = "/api/v1/crm/leads"
SECOND = {"id": 1, "name": "Доставки"}


@pytest.fixture
async def portal(db: Database, tmp_path: Path) -> AsyncIterator[Portal]:
    p = await open_portal(db, tmp_path)
    try:
        yield p
    finally:
        await p.close()


async def settings(portal: Portal, **values: Any) -> None:
    response = await portal.http.post("/_emulator/settings", json=values)
    assert response.status_code == 200, response.text


async def person_deal(portal: Portal, **body: Any) -> int:
    response = await portal.http.post(
        "/_emulator/person/deals",
        json={"title": "Диван", "opportunity": 25000, "assigned_by_id": PERSON, **body},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def emulated_deal(portal: Portal, deal_id: int) -> dict[str, Any]:
    response = await portal.http.get(f"/_emulator/deals/{deal_id}")
    data: dict[str, Any] = response.json()
    return data


async def methods_called(portal: Portal) -> list[str]:
    """Every method the portal ran, the commands inside a batch included."""
    calls = (await portal.http.get("/_emulator/calls")).json()
    methods: list[str] = []
    for call in calls:
        if call["method"] == "batch":
            methods += [c["method"] for c in call["commands"] or []]
        else:
            methods.append(call["method"])
    return methods


async def api(portal: Portal, path: str, role: str = "admin") -> Any:
    response = await portal.hook.client.get(path, headers=auth(role))
    assert response.status_code == 200, response.text
    return response.json()


async def new_delivery(portal: Portal, deal_id: int | None, **extra: Any) -> dict[str, Any]:
    body = delivery_body(courier_id="c-17", **extra)
    if deal_id is not None:
        body["deal_id_b24"] = deal_id
    response = await portal.hook.client.post(DELIVERIES, headers=auth("1c", "erp"), json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def finish(portal: Portal, delivery: dict[str, Any], target: S) -> None:
    await walk_to(portal.hook.client, f"{DELIVERIES}/{delivery['id']}", target, courier="c-17")
    await portal.settle()


async def test_a_persons_deal_appears_in_the_api(portal: Portal) -> None:
    lead = await portal.http.post("/_emulator/person/leads", json={"title": "Звонок"})
    lead_id = lead.json()["id"]
    deal_id = await person_deal(portal, lead_id=lead_id, currency_id="RUB")
    await portal.settle()

    listed = await api(portal, DEALS)
    [deal] = listed["items"]
    assert (deal["id"], deal["title"], deal["stage_id"], deal["amount"]) == (
        deal_id,
        "Диван",
        "NEW",
        "25000.00",
    )
    assert (deal["lead_id_b24"], deal["assigned_by_id"], deal["closed"]) == (lead_id, PERSON, False)
    one = await api(portal, f"{DEALS}/{deal_id}")
    assert one["deliveries"] == [] and one["orders"] == []
    lead_view = await api(portal, f"{LEADS}/{lead_id}")
    assert lead_view["status_id"] == "NEW" and lead_view["deal_ids_b24"] == [deal_id]
    forbidden = await portal.hook.client.get(DEALS, headers=auth("courier", "c-17"))
    assert forbidden.status_code == 403


async def test_delivery_closes_its_deal_won_with_a_comment_per_status(portal: Portal) -> None:
    deal_id = await person_deal(portal)
    await portal.settle()
    delivery = await new_delivery(portal, deal_id)
    assert delivery["deal_id_b24"] == deal_id
    await portal.settle()
    task = await portal.task((await api(portal, f"{DELIVERIES}/{delivery['id']}"))["task_id_b24"])
    assert task["extra"]["UF_CRM_TASK"] == [f"D_{deal_id}"]

    await finish(portal, delivery, S.DONE)

    deal = await emulated_deal(portal, deal_id)
    assert deal["stage_id"] == "WON"
    moves = [c["comment"].splitlines()[0] for c in deal["timeline"]]
    assert moves == [
        "Заказ ЗК-000123: NEW → READY",
        "Заказ ЗК-000123: READY → PICKED_UP",
        "Заказ ЗК-000123: PICKED_UP → ON_ROUTE",
        "Заказ ЗК-000123: ON_ROUTE → DELIVERED",
        "Заказ ЗК-000123: DELIVERED → DONE",
    ]
    mirrored = await api(portal, f"{DEALS}/{deal_id}")
    assert (mirrored["stage_id"], mirrored["b24mw_stage_id"], mirrored["closed"]) == (
        "WON",
        "WON",
        True,
    )
    assert [d["id"] for d in mirrored["deliveries"]] == [delivery["id"]]
    # Our own stage change came back as ONCRMDEALUPDATE: recognised.
    rows = [r for r in await portal.inbox() if r.event == "ONCRMDEALUPDATE"]
    notes = [r.errors[0]["code"] for r in rows if r.errors]
    assert "own_change" in notes
    linked = await api(portal, f"{DEALS}?linked=true")
    assert [d["id"] for d in linked["items"]] == [deal_id]
    assert (await api(portal, f"{DEALS}?linked=false"))["items"] == []


async def test_second_pipeline_ends_in_its_own_won_stage(portal: Portal) -> None:
    await settings(portal, crm_pipelines=[SECOND])
    deal_id = await person_deal(portal, category_id=1)
    await portal.settle()
    await refresh_pipelines(portal.worker.context)
    delivery = await new_delivery(portal, deal_id)
    await finish(portal, delivery, S.DONE)
    assert (await emulated_deal(portal, deal_id))["stage_id"] == "C1:WON"
    by_pipeline = await api(portal, f"{DEALS}?pipeline=1&stage=C1:WON")
    assert [d["id"] for d in by_pipeline["items"]] == [deal_id]


async def test_refused_delivery_ends_the_deal_in_the_configured_lost_stage(
    db: Database, tmp_path: Path
) -> None:
    portal = await open_portal(db, tmp_path, crm_lost_stages="0=APOLOGY")
    try:
        deal_id = await person_deal(portal)
        other = await person_deal(portal, title="Стол")
        await portal.settle()
        refused = await new_delivery(portal, deal_id)
        await portal.settle()
        response = await set_status(
            portal.hook.client, f"{DELIVERIES}/{refused['id']}", "REFUSED", "1c", "erp"
        )
        assert response.status_code == 200
        await portal.settle()
        assert (await emulated_deal(portal, deal_id))["stage_id"] == "APOLOGY"
        # FAILED, then closed as DONE (not delivered) by an admin: lost as well.
        failed = await new_delivery(portal, other, external_id_1c="ЗК-000124")
        await walk_to(
            portal.hook.client, f"{DELIVERIES}/{failed['id']}", S.ON_ROUTE, courier="c-17"
        )
        url = f"{DELIVERIES}/{failed['id']}"
        assert (await set_status(portal.hook.client, url, "FAILED", "courier", "c-17")).is_success
        assert (await set_status(portal.hook.client, url, "DONE")).is_success
        await portal.settle()
        assert (await emulated_deal(portal, other))["stage_id"] == "APOLOGY"
    finally:
        await portal.close()


async def test_without_setting_the_lost_stage_is_the_pipelines_failure_stage(
    portal: Portal,
) -> None:
    deal_id = await person_deal(portal)
    await portal.settle()
    await refresh_pipelines(portal.worker.context)
    delivery = await new_delivery(portal, deal_id)
    await portal.settle()
    await set_status(portal.hook.client, f"{DELIVERIES}/{delivery['id']}", "REFUSED", "1c", "erp")
    await portal.settle()
    assert (await emulated_deal(portal, deal_id))["stage_id"] == "LOSE"


async def _dead(db: Database) -> list[OutboxJob]:
    async with db.reader() as session:
        stmt = select(OutboxJob).where(OutboxJob.status == "dead")
        return list((await session.execute(stmt)).scalars())


async def test_refused_stage_change_waits_in_the_dlq_and_replays_after_the_fix(
    portal: Portal, db: Database
) -> None:
    await settings(portal, crm_required_fields={"WON": ["UF_CRM_INVOICE"]})
    deal_id = await person_deal(portal)
    await portal.settle()
    delivery = await new_delivery(portal, deal_id)
    await finish(portal, delivery, S.DONE)

    [dead] = await _dead(db)
    assert dead.payload["method"] == "crm.item.update"
    assert "CRM_FIELD_ERROR_REQUIRED" in (dead.last_error or "")
    assert "UF_CRM_INVOICE" in (dead.last_error or "")
    assert (await emulated_deal(portal, deal_id))["stage_id"] == "NEW"
    task_id = (await api(portal, f"{DELIVERIES}/{delivery['id']}"))["task_id_b24"]
    told = [c for c in await portal.comments(task_id) if "b24mw dlq replay" in c]
    assert len(told) == 1
    assert f"dlq replay {dead.id}" in told[0] and "UF_CRM_INVOICE" in told[0]

    fixed = await portal.http.patch(
        f"/_emulator/person/deals/{deal_id}", json={"fields": {"UF_CRM_INVOICE": "СФ-17"}}
    )
    assert fixed.status_code == 200
    async with db.unit_of_work() as session:
        await dlq.replay(session, dead.id, "test")
    await portal.settle()
    assert (await emulated_deal(portal, deal_id))["stage_id"] == "WON"
    assert await _dead(db) == []
    assert (await api(portal, f"{DEALS}/{deal_id}"))["b24mw_stage_id"] == "WON"


async def test_closing_publishes_deal_closed(portal: Portal, tmp_path: Path) -> None:
    deal_id = await person_deal(portal)
    await portal.settle()
    delivery = await new_delivery(portal, deal_id)
    await finish(portal, delivery, S.DONE)
    sink = Path(portal.hook.settings.event_sink_list[0].removeprefix("file://"))
    text = await asyncio.to_thread(sink.read_text)
    events = [json.loads(line) for line in text.splitlines()]
    closed = [e for e in events if e["type"] == "integration.deal.closed"]
    assert len(closed) == 1
    assert closed[0]["subject"] == f"crm/deals/{deal_id}"
    assert closed[0]["data"]["stage_id"] == "WON" and closed[0]["data"]["outcome"] == "won"
    assert closed[0]["data"]["order_id"] == delivery["id"]


async def test_automation_moving_the_deal_after_closing_is_recorded_not_fought(
    portal: Portal, db: Database
) -> None:
    await settings(portal, crm_automation={"WON": "APOLOGY"})
    deal_id = await person_deal(portal)
    await portal.settle()
    delivery = await new_delivery(portal, deal_id)
    await finish(portal, delivery, S.DONE)

    assert (await emulated_deal(portal, deal_id))["stage_id"] == "APOLOGY"
    assert (await methods_called(portal)).count("crm.item.update") == 1  # never set again
    mirrored = await api(portal, f"{DEALS}/{deal_id}")
    assert (mirrored["stage_id"], mirrored["b24mw_stage_id"]) == ("APOLOGY", "WON")
    async with db.reader() as session:
        stmt = select(IntegrationLog).where(IntegrationLog.endpoint == "crm.deal.moved_after_close")
        [moved] = (await session.execute(stmt)).scalars()
    assert moved.resource_ref == f"crm/deals/{deal_id}"


async def test_a_lost_crm_event_is_recovered_by_reconciliation(portal: Portal) -> None:
    await settings(portal, events_enabled=False)
    deal_id = await person_deal(portal)
    lead = await portal.http.post("/_emulator/person/leads", json={"title": "Звонок"})
    await portal.settle()
    assert (await api(portal, DEALS))["items"] == []

    assert await reconcile(portal.worker.context) == 2
    [deal] = (await api(portal, DEALS))["items"]
    assert deal["id"] == deal_id
    assert [x["id"] for x in (await api(portal, LEADS))["items"]] == [lead.json()["id"]]
    # A change whose event is lost too.
    await portal.http.patch(f"/_emulator/person/deals/{deal_id}", json={"title": "Кресло"})
    await reconcile(portal.worker.context)
    assert (await api(portal, f"{DEALS}/{deal_id}"))["title"] == "Кресло"


async def test_an_older_read_never_overwrites_a_newer_one(portal: Portal) -> None:
    from b24mw.crm.flows import store_read

    deal_id = await person_deal(portal)
    await portal.settle()
    newer = (await portal.http.get(f"/_emulator/deals/{deal_id}")).json()
    stored = await api(portal, f"{DEALS}/{deal_id}")
    older_item = {
        "id": deal_id,
        "title": "Старое",
        "stageId": "NEW",
        "updatedTime": "2020-01-01T00:00:00+03:00",
        "opportunity": 1,
        "currencyId": "RUB",
    }
    async with portal.db.unit_of_work() as session:
        result = await store_read(session, 2, older_item, None)
    assert result.errors[0]["code"] == "older_read"
    assert (await api(portal, f"{DEALS}/{deal_id}"))["title"] == stored["title"] == newer["title"]


async def test_deleted_deal_is_recorded_and_its_delivery_kept(portal: Portal) -> None:
    deal_id = await person_deal(portal)
    await portal.settle()
    delivery = await new_delivery(portal, deal_id)
    await portal.http.delete(f"/_emulator/person/deals/{deal_id}")
    await portal.settle()
    assert (await api(portal, DEALS))["items"] == []
    gone = await api(portal, f"{DEALS}/{deal_id}")
    assert gone["deleted_at"] is not None
    kept = await api(portal, f"{DELIVERIES}/{delivery['id']}")
    assert kept["deal_id_b24"] == deal_id
    refused = await portal.hook.client.post(
        DELIVERIES,
        headers=auth("1c", "erp"),
        json={**delivery_body(courier_id="c-17", external_id_1c="ЗК-9"), "deal_id_b24": deal_id},
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "deal_id_b24"


async def test_unknown_deal_is_refused_with_the_field_named(portal: Portal) -> None:
    response = await portal.hook.client.post(
        DELIVERIES,
        headers=auth("1c", "erp"),
        json={**delivery_body(courier_id="c-17"), "deal_id_b24": 999},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "deal_id_b24"


async def test_instant_order_from_a_task_bound_to_a_deal_links_it(portal: Portal) -> None:
    deal_id = await person_deal(portal)
    await portal.settle()
    response = await portal.http.post(
        "/_emulator/person/tasks",
        json={
            "title": "Продажа",
            "description": "- SKU-1 | Чехол | 1 | 490\ncustomer: Иван",
            "responsible_id": 17,
            "tags": ["instant_order"],
            "created_by": PERSON,
        },
    )
    task_id = response.json()["id"]
    portal.portal.service.update_task(task_id, {"UF_CRM_TASK": [f"D_{deal_id}"]}, PERSON)
    await portal.settle()
    [order] = await portal.orders()
    assert order["deal_id_b24"] == deal_id
    detail = await api(portal, f"{DEALS}/{deal_id}")
    assert [o["id"] for o in detail["orders"]] == [order["id"]]
    await walk_to(portal.hook.client, f"{ORDERS}/{order['id']}", S.DONE, courier="c-17")
    await portal.settle()
    deal = await emulated_deal(portal, deal_id)
    assert deal["stage_id"] == "WON" and len(deal["timeline"]) == 5


async def test_simple_crm_leaves_leads_absent_and_deals_working(portal: Portal) -> None:
    await settings(portal, crm_mode=2, events_enabled=False)
    deal_id = await person_deal(portal)
    assert await reconcile(portal.worker.context) == 1
    assert [d["id"] for d in (await api(portal, DEALS))["items"]] == [deal_id]
    assert (await api(portal, LEADS))["items"] == []
    calls = await portal.http.get("/_emulator/calls", params={"method": "crm.item.list"})
    assert [c["args"]["entityTypeId"] for c in calls.json()] == [2]


async def test_without_the_crm_scope_the_scan_waits_for_its_next_interval(
    portal: Portal,
) -> None:
    from b24mw.crm.reconcile import reconcile_when_due, refresh_pipelines_when_due

    await settings(portal, webhook_scope="task,user,im")
    assert await reconcile_when_due(portal.worker.context) == 0
    assert await refresh_pipelines_when_due(portal.worker.context) == 0
    before = len((await portal.http.get("/_emulator/calls")).json())
    # Refused once: not asked again before the interval is over.
    assert await reconcile_when_due(portal.worker.context) == 0
    assert await refresh_pipelines_when_due(portal.worker.context) == 0
    assert len((await portal.http.get("/_emulator/calls")).json()) == before


async def test_a_deal_closed_by_a_person_is_not_overruled(portal: Portal) -> None:
    deal_id = await person_deal(portal)
    await portal.settle()
    delivery = await new_delivery(portal, deal_id)
    await portal.settle()
    await portal.http.patch(f"/_emulator/person/deals/{deal_id}", json={"stage_id": "LOSE"})
    await portal.settle()
    await finish(portal, delivery, S.DONE)
    deal = await emulated_deal(portal, deal_id)
    assert deal["stage_id"] == "LOSE"
    assert len(deal["timeline"]) == 5  # still told of every change
    assert "crm.item.update" not in await methods_called(portal)


async def test_a_filter_given_twice_is_refused_not_half_read(portal: Portal) -> None:
    response = await portal.hook.client.get(
        f"{DEALS}?linked=true&linked=bogus", headers=auth("admin")
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.linked"
    bad = await portal.hook.client.get(f"{DEALS}?linked=maybe", headers=auth("admin"))
    assert bad.status_code == 422
