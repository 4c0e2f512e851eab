"""The demo's CRM and support scenes: a deal closed by the delivery that
serves it (docs/crm.md), and a customer chat in an open line linked to the
order it is about (docs/support.md).  Each step is checked, as in flows.py,
through b24mw's API and the portal's control routes."""

from __future__ import annotations

import time
from typing import Any

from b24mw.demo.flows import COURIER, MANAGER, ONEC, Story
from b24mw.demo.world import expect, until
from b24mw.i18n import t

DEAL_CUSTOMER = "Светлана Орлова"
DEAL_DELIVERY = "ЗК-000124"
# A paid-online delivery (no cash): DELIVERED → DONE without CASH_RETURNED.
DEAL_WALK = [
    ("READY", "1c"),
    ("PICKED_UP", "courier"),
    ("ON_ROUTE", "courier"),
    ("DELIVERED", "courier"),
    ("DONE", "courier"),
]
CHAT_CLIENT = "Анна Смирнова"


def _sub(role: str) -> str:
    return {"1c": ONEC, "courier": COURIER.sub, "admin": MANAGER.sub}[role]


async def deal_closed(story: Story) -> None:
    world, say = story.world, story.say
    say.step("A deal closed by its delivery")
    since = await world.last_call()
    deal = await world.portal(
        "POST",
        "/_emulator/person/deals",
        json={
            "title": "Телевизор 55″ с доставкой",
            "opportunity": 32990,
            "currency_id": "RUB",
            "assigned_by_id": MANAGER.b24_user,
        },
    )
    deal_id = int(deal["id"])
    created = time.monotonic()
    say.person(
        MANAGER.name,
        f"opens deal {deal_id} «{deal['title']}» in the portal, {deal['opportunity']} "
        f"{deal['currency_id']}, stage {deal['stage_id']}",
    )
    path = f"/api/v1/crm/deals/{deal_id}"
    mirrored = await until(
        f"deal {deal_id} in b24mw's mirror",
        lambda: world.api_found(path, role="admin", sub=MANAGER.sub),
        world.timeout,
    )
    say.ok(
        f"deal {deal_id} mirrored in b24mw {time.monotonic() - created:.1f} s later "
        f"(ONCRMDEALADD → crm.item.get), stage {mirrored['stage_id']}"
    )

    body = {
        "external_id_1c": DEAL_DELIVERY,
        "customer_name": DEAL_CUSTOMER,
        "address": "Москва, Ленинский проспект 12, кв. 40",
        "cod_amount": "0.00",
        "delivery_price": "490.00",
        "courier_id": COURIER.sub,
        "deal_id_b24": deal_id,
        "items": [{"sku": "TV-55", "name": "Телевизор 55″", "qty": 1, "price": "32500.00"}],
    }
    delivery = await world.api_json(
        "POST", "/api/v1/deliveries", role="1c", sub=ONEC, json=body, expected=201
    )
    did = delivery["id"]
    expect(delivery["deal_id_b24"] == deal_id, f"delivery {did} serves {delivery['deal_id_b24']}")
    say.person("1C", f"posts delivery {DEAL_DELIVERY} (b24mw id {did}) serving deal {deal_id}")

    async def task_of_delivery() -> int | None:
        read = await world.api_json("GET", f"/api/v1/deliveries/{did}", role="1c", sub=ONEC)
        task_id: int | None = read["task_id_b24"]
        return task_id

    task_id = await until(f"a task for delivery {did}", task_of_delivery, world.timeout)
    task = await world.task(task_id)
    bound = task["extra"].get("UF_CRM_TASK") or []
    expect(f"D_{deal_id}" in bound, f"task {task_id} is bound to {bound}, not to the deal")
    say.ok(f"task {task_id} for {COURIER.name}, on the deal's card (UF_CRM_TASK {bound})")

    current, comments = "NEW", []
    for target, role in DEAL_WALK:
        moved = await world.api_json(
            "POST", f"/api/v1/deliveries/{did}/status", role=role, sub=_sub(role),
            json={"status": target},
        )  # fmt: skip
        expect(moved["status"] == target, f"delivery {did} is {moved['status']}, not {target}")
        who = "1C" if role == "1c" else COURIER.name
        say.person(who, f"moves delivery {did}: {current} → {target}")
        # The deal's timeline gets the task's comment, in b24mw's locale.
        comments.append(
            t("order.status_changed", story.locale, id=DEAL_DELIVERY, from_status=current,
              to_status=target)
        )  # fmt: skip
        current = target

    async def deal_won() -> dict[str, Any] | None:
        state: dict[str, Any] = await world.portal("GET", f"/_emulator/deals/{deal_id}")
        timeline = [c["comment"] for c in state["timeline"]]
        written = all(any(c.startswith(text) for c in timeline) for text in comments)
        return state if state["stage_id"] == "WON" and written else None

    won = await until(f"deal {deal_id} in stage WON with its comments", deal_won, world.timeout)
    say.ok(
        f"deal {deal_id} is in stage {won['stage_id']} in Bitrix24, with "
        f"{len(won['timeline'])} timeline comments, one per move:"
    )
    say.quote("\n".join(comments))

    async def closed_event() -> dict[str, Any] | None:
        return next(
            (
                e
                for e in world.cloudevents()
                if e["type"] == "integration.deal.closed" and e["subject"] == f"crm/deals/{deal_id}"
            ),
            None,
        )

    event = await until("the CloudEvent integration.deal.closed", closed_event, world.timeout)
    expect(event["data"]["outcome"] == "won", f"the deal closed {event['data']['outcome']}")
    say.ok(f"CloudEvent integration.deal.closed (outcome {event['data']['outcome']})")
    say.calls(await world.settle(since))


async def customer_chat(story: Story) -> None:
    world, say = story.world, story.say
    order_id = story.order["id"]
    say.step(f"A customer chat about order {order_id}, kept and linked to the order")
    since = await world.last_call()
    session = await world.portal(
        "POST",
        "/_emulator/person/openlines/sessions",
        json={"line_id": 1, "connector": "telegram", "client_name": CHAT_CLIENT},
    )
    sid = int(session["id"])
    question = f"Здравствуйте! Где мой заказ №{order_id}? Хочу уточнить про чехол."
    answer = "Заказ доставлен курьером Иваном, чехол можно вернуть в течение 14 дней."
    await world.portal(
        "POST",
        f"/_emulator/person/openlines/sessions/{sid}/messages",
        json={"from": "client", "text": question},
    )
    say.person(CHAT_CLIENT, f"writes in Telegram (open line 1, session {sid}):")
    say.quote(question)
    await world.portal(
        "POST",
        f"/_emulator/person/openlines/sessions/{sid}/messages",
        json={"from": "operator", "text": answer},
    )
    say.person(MANAGER.name, "answers in the open line:")
    say.quote(answer)
    written = time.monotonic()

    async def listed() -> dict[str, Any] | None:
        chats = await world.api_json(
            "GET", f"/api/v1/ww/orders/{order_id}/chats", role="admin", sub=MANAGER.sub
        )
        return next((c for c in chats["items"] if c["b24_session_id"] == sid), None)

    chat = await until(f"session {sid} in order {order_id}'s chats", listed, world.timeout)
    links = [(link["target_kind"], link["target_id"], link["found_by"]) for link in chat["links"]]
    expect(
        any(kind == "instant_order" and tid == str(order_id) for kind, tid, _ in links),
        f"session {sid} links {links}",
    )
    say.ok(
        f"chat {chat['id']} (session {sid}) in GET /api/v1/ww/orders/{order_id}/chats "
        f"{time.monotonic() - written:.1f} s after the message; links: "
        + ", ".join(f"{kind} {tid} ({how})" for kind, tid, how in links)
    )

    async def messages(count: int, status: str) -> list[dict[str, Any]] | None:
        detail = await world.api_json(
            "GET", f"/api/v1/support/sessions/{chat['id']}", role="admin", sub=MANAGER.sub
        )
        items: list[dict[str, Any]] = detail["messages"]["items"]
        return items if len(items) >= count and detail["status"] == status else None

    kept = await until(
        f"the 2 messages of session {sid}", lambda: messages(2, "open"), world.timeout
    )
    expect([m["text_plain"] for m in kept] == [question, answer], "the messages kept differ")
    say.ok(
        "both messages kept in b24mw: "
        + ", ".join(f"{m['sender_kind']} #{m['b24_message_id']}" for m in kept)
    )

    await world.portal("POST", f"/_emulator/person/openlines/sessions/{sid}/close")
    say.person(MANAGER.name, f"closes session {sid}")
    portal_state = await world.portal("GET", f"/_emulator/openlines/sessions/{sid}")
    final = await until(
        f"the final read of session {sid}",
        lambda: messages(len(portal_state["messages"]), "closed"),
        world.timeout,
    )
    expect(
        [m["b24_message_id"] for m in final] == [m["id"] for m in portal_state["messages"]],
        f"session {sid}: b24mw kept {len(final)} of {len(portal_state['messages'])} messages",
    )
    say.ok(
        f"session closed; the final read kept its last message too (the line's "
        f"«{final[-1]['text_plain']}»): {len(final)} of {len(portal_state['messages'])} messages"
    )
    history = await world.api_json(
        "GET", f"/api/v1/ww/orders/{order_id}/events", role="admin", sub=MANAGER.sub
    )
    rows = [
        e["payload"]
        for e in history["items"]
        if e["type"] == "chat" and e["payload"].get("b24_session_id") == sid
    ]
    expect(
        [row.get("action") for row in rows] == ["linked"],
        f"order {order_id}'s history of chat {sid}: {rows}",
    )
    say.ok(
        f"order {order_id}'s history (/events) has the row: customer chat {sid} linked "
        f"(found by {rows[0].get('found_by')})"
    )
    say.calls(await world.settle(since))
