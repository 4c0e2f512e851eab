"""The whole loop against the emulator: a customer writes in an open line,
the CRM activity event reaches the inbox, the poller reads the session, the
messages land once, and mentions link the session to what it is about."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from b24mw.kit.db import Database
from b24mw.models.history import HistoryEntry
from b24mw.models.orders import InstantOrder
from b24mw.models.support import ChatLink, ChatMessage, ChatSession
from tests.chats.helpers import SESSIONS, start, write
from tests.support.auth import auth
from tests.support.orders import order_body
from tests.support.portal import Portal, open_portal


@pytest.fixture
async def portal(db: Database, tmp_path: Path) -> AsyncIterator[Portal]:
    p = await open_portal(db, tmp_path, support_poll_interval_s=3600.0, support_poll_round_s=0.0)
    try:
        yield p
    finally:
        await p.close()


async def create_order(portal: Portal) -> int:
    response = await portal.hook.client.post(
        "/api/v1/ww/orders", json=order_body(courier_id="c-17"), headers=auth("admin")
    )
    assert response.status_code == 201, response.text
    order_id: int = response.json()["id"]
    return order_id


async def api(portal: Portal, path: str, role: str = "admin", sub: str = "tester") -> Any:
    response = await portal.hook.client.get(path, headers=auth(role, sub))
    assert response.status_code == 200, response.text
    return response.json()


async def poll(portal: Portal) -> None:
    """Deliver the events and work; then let every open session be due again."""
    await portal.settle()
    async with portal.db.unit_of_work() as session:
        await session.execute(update(ChatSession).values(checked_at=None))
    await portal.settle()


async def count(db: Database, model: Any) -> int:
    async with db.reader() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_a_customer_asking_about_an_order_is_linked_to_it(portal: Portal) -> None:
    order_id = await create_order(portal)
    chat = await start(portal, client_name="Anna")
    await write(portal, chat["id"], f"где мой заказ {order_id}? Телефон +79123456789")
    await write(portal, chat["id"], "[b]Проверяем[/b]", "operator")
    await poll(portal)

    listed = await api(portal, "/api/v1/support/sessions")
    [item] = listed["items"]
    assert item["b24_session_id"] == chat["id"]
    assert item["chat_id"] == chat["chat_id"]
    assert item["connector"] == "telegram"
    assert item["status"] == "open"
    assert [
        (link["target_kind"], link["target_id"], link["found_by"]) for link in item["links"]
    ] == [("instant_order", str(order_id), "mention")]
    detail = await api(portal, f"/api/v1/support/sessions/{item['id']}")
    kinds = [(m["sender_kind"], m["text_plain"]) for m in detail["messages"]["items"]]
    assert kinds == [
        ("client", f"где мой заказ {order_id}? Телефон +79123456789"),
        ("operator", "Проверяем"),
    ]
    assert detail["messages"]["items"][1]["text_bbcode"] == "[b]Проверяем[/b]"
    chats = await api(portal, f"/api/v1/ww/orders/{order_id}/chats")
    assert [c["id"] for c in chats["items"]] == [item["id"]]
    history = await portal.history(order_id)
    assert any(e["type"] == "chat" for e in history), history


async def test_new_messages_are_read_when_the_dialog_grows(portal: Portal) -> None:
    chat = await start(portal)
    await write(portal, chat["id"], "hello")
    await poll(portal)
    assert await count(portal.db, ChatMessage) == 1
    await write(portal, chat["id"], "anyone there?")
    await poll(portal)
    assert await count(portal.db, ChatMessage) == 2


async def test_a_closed_session_gets_its_last_messages(portal: Portal) -> None:
    chat = await start(portal)
    await write(portal, chat["id"], "first")
    await poll(portal)
    await write(portal, chat["id"], "last words before closing")
    closed = await portal.http.post(f"{SESSIONS}/{chat['id']}/close")
    assert closed.status_code == 200
    # No poll of open sessions: only the close event's final read.
    await portal.settle()
    listed = await api(portal, "/api/v1/support/sessions?status=closed")
    [item] = listed["items"]
    detail = await api(portal, f"/api/v1/support/sessions/{item['id']}")
    texts = [m["text_plain"] for m in detail["messages"]["items"]]
    assert "last words before closing" in texts
    assert detail["messages"]["items"][-1]["sender_kind"] == "system"


async def test_replays_and_repeated_reads_store_nothing_twice(portal: Portal) -> None:
    order_id = await create_order(portal)
    chat = await start(portal)
    await write(portal, chat["id"], f"order {order_id}")
    await poll(portal)
    # Every session owes a read again (as after a worker killed mid-round),
    # and the activity event arrives once more.
    async with portal.db.unit_of_work() as session:
        await session.execute(update(ChatSession).values(read_due=True))
    await portal.worker.drain(timeout=30)
    await poll(portal)
    assert await count(portal.db, ChatSession) == 1
    assert await count(portal.db, ChatMessage) == 1
    assert await count(portal.db, ChatLink) == 1
    async with portal.db.reader() as session:
        rows = (
            await session.execute(select(HistoryEntry).where(HistoryEntry.type == "chat"))
        ).scalars()
        assert len(list(rows)) == 1


async def test_a_session_bound_to_a_deal_links_the_deal_and_what_serves_it(
    portal: Portal,
) -> None:
    order_id = await create_order(portal)
    other_id = await create_order(portal)
    async with portal.db.unit_of_work() as session:
        await session.execute(
            update(InstantOrder).where(InstantOrder.id == order_id).values(deal_id_b24=12)
        )
    await start(portal, crm_entity="D_12")
    await poll(portal)
    listed = await api(portal, "/api/v1/support/sessions?target_kind=deal&target_id=12")
    [item] = listed["items"]
    assert item["crm_entity"] == "D_12"
    assert sorted(
        (link["target_kind"], link["target_id"], link["found_by"]) for link in item["links"]
    ) == [
        ("deal", "12", "crm_binding"),
        ("instant_order", str(order_id), "crm_binding"),
    ]
    # The order serving the deal shows the chat and its history says so; another does not.
    chats = await api(portal, f"/api/v1/ww/orders/{order_id}/chats")
    assert [c["id"] for c in chats["items"]] == [item["id"]]
    assert (await api(portal, f"/api/v1/ww/orders/{other_id}/chats"))["items"] == []
    assert any(e["type"] == "chat" for e in await portal.history(order_id))


async def test_an_admin_links_and_unlinks_by_hand_and_a_courier_sees_only_theirs(
    portal: Portal,
) -> None:
    order_id = await create_order(portal)
    chat = await start(portal)
    await write(portal, chat["id"], "hi")
    await poll(portal)
    [item] = (await api(portal, "/api/v1/support/sessions"))["items"]
    path = f"/api/v1/support/sessions/{item['id']}/links"
    assert (await api(portal, "/api/v1/support/sessions", "courier", "c-17"))["items"] == []
    refused = await portal.hook.client.post(
        path,
        json={"target_kind": "instant_order", "target_id": str(order_id)},
        headers=auth("courier", "c-17"),
    )
    assert refused.status_code == 403
    missing = await portal.hook.client.post(
        path, json={"target_kind": "instant_order", "target_id": "999999"}, headers=auth("admin")
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "target_id"
    linked = await portal.hook.client.post(
        path,
        json={"target_kind": "instant_order", "target_id": str(order_id)},
        headers=auth("admin"),
    )
    assert linked.status_code == 201, linked.text
    assert linked.json()["links"][0]["found_by"] == "manual"
    mine = await api(portal, "/api/v1/support/sessions", "courier", "c-17")
    assert [s["id"] for s in mine["items"]] == [item["id"]]
    other = await api(portal, "/api/v1/support/sessions", "courier", "c-99")
    assert other["items"] == []
    gone = await portal.hook.client.delete(
        f"{path}/instant_order/{order_id}", headers=auth("admin")
    )
    assert gone.status_code == 204
    assert (await api(portal, f"/api/v1/ww/orders/{order_id}/chats"))["items"] == []
    actions = [
        e["payload"].get("action") for e in await portal.history(order_id) if e["type"] == "chat"
    ]
    assert actions == ["linked", "unlinked"]


async def test_text_search_finds_sessions_by_their_messages(portal: Portal) -> None:
    first = await start(portal)
    await write(portal, first["id"], "Курьер опоздал")
    second = await start(portal)
    await write(portal, second["id"], "Спасибо")
    await poll(portal)
    found = await api(portal, "/api/v1/support/sessions?q=опоздал")
    assert [s["b24_session_id"] for s in found["items"]] == [first["id"]]


@pytest.mark.parametrize("as_json", [False, True])
async def test_an_application_event_is_a_hint_for_an_earlier_read(
    portal: Portal, as_json: bool
) -> None:
    chat = await start(portal)
    await write(portal, chat["id"], "hello")
    await portal.settle()
    await write(portal, chat["id"], "second, with no CRM event")
    hint = {
        "event": "ONOPENLINEMESSAGEADD",
        "data": {"DATA": [{"chat": {"id": str(chat["chat_id"])}, "message": {"id": "1"}}]},
        "ts": "1",
        "auth": {"domain": "x"},
    }
    response = await portal.hook.post_signed(hint, as_json=as_json)
    assert response.status_code == 200, response.text
    # Not checked again by the clock (interval not over): only the hint makes it read.
    await portal.settle()
    assert await count(portal.db, ChatMessage) == 2


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("delivery", "99999999999999999999999"),
        ("deal", "-3"),
        ("return", "not-a-uuid"),
        ("instant_order", "x"),
    ],
)
async def test_a_manual_link_to_no_such_target_is_422(
    portal: Portal, kind: str, target: str
) -> None:
    chat = await start(portal)
    await write(portal, chat["id"], "hi")
    await poll(portal)
    [item] = (await api(portal, "/api/v1/support/sessions"))["items"]
    response = await portal.hook.client.post(
        f"/api/v1/support/sessions/{item['id']}/links",
        json={"target_kind": kind, "target_id": target},
        headers=auth("admin"),
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "target_id"
