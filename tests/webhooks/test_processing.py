"""Against the emulator: Bitrix24 tasks and comments become orders, answered
in Bitrix24; what cannot become an order is explained there; nothing loops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from b24mw.kit.db import Database
from tests.support.clock import Clock
from tests.support.portal import COURIER_USER, ORDER, Portal, add_courier, open_portal


@pytest.fixture
async def portal(db: Database, tmp_path: Path) -> AsyncIterator[Portal]:
    p = await open_portal(db, tmp_path)
    try:
        yield p
    finally:
        await p.close()


async def test_tagged_task_becomes_an_order_answered_in_bitrix24(portal: Portal) -> None:
    task_id = await portal.create_task(ORDER)
    await portal.settle()

    [order] = await portal.orders()
    assert order["task_id_b24"] == task_id
    assert order["origin"] == "b24_task"
    assert order["courier_id"] == "c-17"
    assert order["customer_name"] == "Иван Петров"
    assert order["client_phone"] == "+79123456789"
    assert order["notes"] == "позвонить за час"
    assert [(i["sku"], i["qty"], i["price"]) for i in order["items"]] == [
        ("SKU-1", 2, "490.00"),
        ("SKU-2", 1, "1290.50"),
    ]
    assert order["total_amount"] == "2270.50"
    [answer] = await portal.comments(task_id)
    assert f"Заказ {order['id']} создан" in answer
    assert "2270.50 RUB" in answer
    assert [r.status for r in await portal.inbox()] == ["done"] * len(await portal.inbox())


async def test_comment_with_hashtag_becomes_an_order_for_its_author(
    portal: Portal, db: Database
) -> None:
    await add_courier(db, "c-23", 23, "Анна")
    task_id = await portal.create_task("Просто задача", tags=[])
    await portal.comment(
        task_id, "#instant_order\n- A-1 | Вода | 3 | 50\ncustomer: Ольга", author_id=23
    )
    await portal.settle()

    [order] = await portal.orders()
    assert (order["origin"], order["courier_id"], order["total_amount"]) == (
        "b24_comment",
        "c-23",
        "150.00",
    )
    comments = await portal.comments(task_id)
    assert len(comments) == 2
    assert f"Заказ {order['id']} создан" in comments[1]


async def test_unsigned_portal_with_application_token_works_too(
    db: Database, tmp_path: Path
) -> None:
    portal = await open_portal(db, tmp_path, signed=False)
    try:
        task_id = await portal.create_task(ORDER)
        await portal.settle()
        [order] = await portal.orders()
        assert order["task_id_b24"] == task_id
        assert portal.hook.siem_lines() == []
    finally:
        await portal.close()


async def test_malformed_order_is_rejected_with_a_comment_listing_the_errors(
    portal: Portal, db: Database
) -> None:
    text = "#instant_order\n- SKU-1 | Чехол | два | 490\n- SKU-2 | Зарядка\n"
    task_id = await portal.create_task(text)
    await portal.settle()

    assert await portal.orders() == []
    rows = await portal.inbox()
    rejected = [r for r in rows if r.status == "rejected"]
    assert len(rejected) == 1
    assert [(e["line"], e["code"]) for e in rejected[0].errors] == [
        (2, "item.qty"),
        (3, "item.fields"),
        (None, "order.no_customer"),
    ]
    [comment] = await portal.comments(task_id)
    assert comment.startswith("Заказ не создан. Исправьте и отправьте снова:")
    assert "строка 2: количество должно быть целым числом больше нуля" in comment
    assert "строка 3: позиция пишется так" in comment
    assert "не указан клиент" in comment

    from b24mw.history.repository import HistoryRepository

    async with db.reader() as session:
        logs = await HistoryRepository(session).logs(status="rejected")
    assert [(log.endpoint, log.resource_ref, log.error_code) for log in logs] == [
        ("ONTASKADD", f"task:{task_id}", "item.qty")
    ]

    # The person fixes the description: the next event makes the order.
    response = await portal.http.patch(
        f"/_emulator/person/tasks/{task_id}", json={"description": ORDER, "changed_by": 42}
    )
    assert response.status_code == 200
    await portal.settle()
    [order] = await portal.orders()
    assert order["task_id_b24"] == task_id
    assert len(await portal.comments(task_id)) == 2


async def test_errors_are_written_in_english_with_locale_en(db: Database, tmp_path: Path) -> None:
    portal = await open_portal(db, tmp_path, locale="en")
    try:
        task_id = await portal.create_task("#instant_order\ncustomer: Bob", responsible_id=99)
        await portal.settle()
        [comment] = await portal.comments(task_id)
        assert comment.startswith("The order was not created. Please fix and send again:")
        assert "there is no item line" in comment
        assert "Bitrix24 user 99 is not an active courier" in comment
    finally:
        await portal.close()


async def test_unknown_courier_is_rejected(portal: Portal) -> None:
    task_id = await portal.create_task(ORDER, responsible_id=555)
    await portal.settle()
    assert await portal.orders() == []
    [row] = [r for r in await portal.inbox() if r.status == "rejected"]
    assert [e["code"] for e in row.errors] == ["courier.unknown"]
    [comment] = await portal.comments(task_id)
    assert "пользователь Битрикс24 555 не связан ни с одним активным курьером" in comment


async def test_hundred_duplicate_deliveries_make_one_order_and_one_answer(
    portal: Portal,
) -> None:
    portal.portal.apply_settings({"events_enabled": False})
    task_id = await portal.create_task(ORDER)
    [lost] = [e for e in portal.portal.events.log if e["event"] == "ONTASKADD"]
    from b24mw.emulator.wire.phpquery import parse_pairs

    payload = parse_pairs(list(lost["form"].items()))
    ts = int(portal.hook.clock())
    for _ in range(100):
        response = await portal.hook.post_signed(payload, request_id="dup-1", timestamp=ts)  # type: ignore[arg-type]
        assert response.status_code == 200
    await portal.worker.drain(timeout=30)

    assert len(await portal.orders()) == 1
    assert len(await portal.inbox()) == 1
    assert len(await portal.comments(task_id)) == 1


async def test_lost_events_are_recovered_by_reconciliation(db: Database, tmp_path: Path) -> None:
    from b24mw.webhooks.reconcile import reconcile

    clock = Clock()
    portal = await open_portal(db, tmp_path, clock=clock)
    try:
        await _recovered_by_reconciliation(portal, clock, reconcile)
    finally:
        await portal.close()


async def _recovered_by_reconciliation(portal: Portal, clock: Clock, reconcile: Any) -> None:
    portal.portal.apply_settings({"events_enabled": False})
    first = await portal.create_task(ORDER)
    untagged = await portal.create_task(ORDER.replace(", #instant_order", ""), tags=[])
    assert await portal.inbox() == []

    clock.advance(2)  # the scan reads the tasks seconds after their change
    assert await reconcile(portal.worker.context) == 1
    await portal.worker.drain(timeout=30)
    [order] = await portal.orders()
    assert order["task_id_b24"] == first
    assert len(await portal.comments(first)) == 1
    assert await portal.comments(untagged) == []

    # A second scan finds nothing new: the task was read after its change.
    assert await reconcile(portal.worker.context) == 0
    second = await portal.create_task(ORDER.replace("SKU-1", "SKU-9"))
    clock.advance(2)
    assert await reconcile(portal.worker.context) == 1
    await portal.worker.drain(timeout=30)
    assert sorted(o["task_id_b24"] for o in await portal.orders()) == [first, second]


async def test_events_on_a_linked_task_are_recorded_once_and_never_loop(
    portal: Portal, db: Database
) -> None:
    task_id = await portal.create_task(ORDER)
    await portal.settle()
    [order] = await portal.orders()

    # The courier comments; a person starts the task in Bitrix24.
    await portal.comment(task_id, "Выехал к клиенту", author_id=COURIER_USER)
    response = await portal.http.post(
        f"/_emulator/person/tasks/{task_id}/status", json={"action": "start", "actor_id": 17}
    )
    assert response.status_code == 200
    await portal.settle()

    events = await portal.history(order["id"])
    b24_status = [
        e for e in events if e["type"] == "status" and e["payload"].get("source") == "bitrix24"
    ]
    assert [e["payload"]["b24_status_name"] for e in b24_status] == ["in_progress"]
    comments = [
        e for e in events if e["type"] == "comment" and e["payload"].get("source") == "bitrix24"
    ]
    assert [c["payload"]["text"] for c in comments] == ["Выехал к клиенту"]

    # Reprocessing the same state (reconciliation) records nothing new.
    from b24mw.webhooks.reconcile import reconcile

    await reconcile(portal.worker.context)
    await portal.worker.drain(timeout=30)
    again = await portal.history(order["id"])
    assert len(again) == len(events)
    # Our answer comment raised an event too: recognised, not answered again.
    assert len([c for c in await portal.comments(task_id) if "[b24mw:" in c]) == 1
    notes = [e["code"] for r in await portal.inbox() for e in r.errors]
    assert "own_comment" in notes


async def test_second_order_for_the_same_courier_is_a_duplicate(portal: Portal) -> None:
    task_id = await portal.create_task(ORDER)
    await portal.settle()
    await portal.comment(task_id, ORDER, author_id=COURIER_USER)
    await portal.settle()
    assert len(await portal.orders()) == 1
    comments = await portal.comments(task_id)
    assert "по этой задаче для этого курьера уже есть заказ" in comments[-1]


async def test_bitrix24_down_keeps_the_event_for_later(portal: Portal) -> None:
    response = await portal.http.post("/_emulator/faults", json={"kind": "http_500", "count": 1})
    assert response.status_code == 201
    await portal.create_task(ORDER)
    await portal.portal.events.join()
    await portal.worker.drain(timeout=30)
    [row] = await portal.inbox()
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.errors[0]["code"] == "INTERNAL_SERVER_ERROR"
    assert await portal.orders() == []


async def test_our_own_task_update_is_recorded_not_acted_on(portal: Portal) -> None:
    from tests.support.auth import auth

    task_id = await portal.create_task(ORDER)
    await portal.settle()
    [order] = await portal.orders()
    response = await portal.hook.client.post(
        f"/api/v1/ww/orders/{order['id']}/status", json={"status": "REFUSED"}, headers=auth("admin")
    )
    assert response.status_code == 200, response.text
    await portal.settle()  # our tasks.task.complete raises ONTASKUPDATE

    assert (await portal.task(task_id))["status"] == 5
    events = await portal.history(order["id"])
    [b24] = [e for e in events if e["payload"].get("source") == "bitrix24"]
    assert (b24["payload"]["b24_status_name"], b24["payload"]["own_change"]) == ("completed", True)
    # Our answer and our status comment; nothing answered our own events.
    assert len(await portal.comments(task_id)) == 2
    assert len(await portal.orders()) == 1


async def test_tagged_task_changed_by_our_own_call_does_not_become_an_order(
    portal: Portal,
) -> None:
    task_id = await portal.create_task("черновик", tags=[])
    response = await portal.http.patch(
        f"/_emulator/person/tasks/{task_id}",
        json={"description": ORDER, "tags": ["instant_order"], "changed_by": 1},
    )
    assert response.status_code == 200
    await portal.settle()
    assert await portal.orders() == []
    assert "own_change" in [e["code"] for r in await portal.inbox() for e in r.errors]


async def test_event_fails_visibly_after_the_last_attempt(db: Database, tmp_path: Path) -> None:
    from b24mw.history.repository import HistoryRepository

    portal = await open_portal(db, tmp_path, webhook_inbox_max_attempts=1)
    try:
        await portal.http.post("/_emulator/faults", json={"kind": "http_500", "count": 1})
        task_id = await portal.create_task(ORDER)
        await portal.portal.events.join()
        await portal.worker.drain(timeout=30)
        [row] = await portal.inbox()
        assert row.status == "failed"
        assert row.errors[-1]["code"] == "INTERNAL_SERVER_ERROR"
        async with db.reader() as session:
            [log] = await HistoryRepository(session).logs(status="failed", system="b24")
        assert (log.resource_ref, log.error_code) == (f"task:{task_id}", "INTERNAL_SERVER_ERROR")
    finally:
        await portal.close()


async def test_deleting_a_linked_task_is_recorded_and_the_order_stays(portal: Portal) -> None:
    task_id = await portal.create_task(ORDER)
    await portal.settle()
    [order] = await portal.orders()
    assert (await portal.http.delete(f"/_emulator/person/tasks/{task_id}")).status_code == 200
    await portal.settle()
    history = await portal.history(order["id"])
    assert history[-1]["payload"] == {"source": "bitrix24", "b24_status_name": "deleted"}
    assert len(await portal.orders()) == 1


async def test_photos_on_a_linked_task_are_recorded_once_per_file(
    portal: Portal, db: Database
) -> None:
    from b24mw.webhooks import flows
    from b24mw.webhooks.fetch import parse_comment
    from b24mw.webhooks.repository import WebhookRepository

    task_id = await portal.create_task(ORDER)
    await portal.settle()
    [order] = await portal.orders()

    def comment(comment_id: int, *file_ids: str) -> dict[str, object]:
        # The shape task.commentitem.get gives for a comment with attachments.
        attached = {
            str(900 + n): {"ATTACHMENT_ID": str(900 + n), "NAME": f"{f}.jpg", "FILE_ID": f}
            for n, f in enumerate(file_ids)
        }
        return {
            "ID": str(comment_id),
            "AUTHOR_ID": "17",
            "POST_MESSAGE": "фото",
            **{"ATTACHED_OBJECTS": attached},
        }

    for raw in (comment(501, "f-1", "f-2"), comment(502, "f-2"), comment(501, "f-1", "f-2")):
        snapshot = parse_comment(raw, task_id)
        assert snapshot is not None
        async with db.unit_of_work() as session:
            links = await WebhookRepository(session).links(task_id)
            await flows.record_comment(session, snapshot, links)

    history = await portal.history(order["id"])
    photos = [e for e in history if e["type"] == "photo"]
    assert sorted(p["payload"]["file_id"] for p in photos) == ["f-1", "f-2"]
    comments = [e for e in history if e["payload"].get("source") == "bitrix24"]
    assert [c["payload"]["comment_id"] for c in comments] == [501, 502]


async def test_hashtag_typed_in_the_description_tags_the_task_and_makes_an_order(
    portal: Portal,
) -> None:
    # No tag chosen in the form: the portal itself turns "#instant_order" into one.
    task_id = await portal.create_task(ORDER, tags=[])
    await portal.settle()

    [order] = await portal.orders()
    assert (order["task_id_b24"], order["origin"], order["total_amount"]) == (
        task_id,
        "b24_task",
        "2270.50",
    )


async def test_description_in_bbcode_becomes_the_order_a_person_sees(portal: Portal) -> None:
    stored = (
        "[P]Клиент на углу[/P][LIST][*][B]SKU-1[/B] | Чехол | 2 | 490,00"
        "[*]SKU-2 | Зарядка [I]USB-C[/I] | 1 | 1 290.50[/LIST]"
        "[P]customer: [USER=31]Иван Петров[/USER][BR]phone: 8 912 345-67-89[/P]"
    )
    await portal.create_task(stored)
    await portal.settle()

    [order] = await portal.orders()
    assert [(i["sku"], i["name"]) for i in order["items"]] == [
        ("SKU-1", "Чехол"),
        ("SKU-2", "Зарядка USB-C"),
    ]
    assert (order["customer_name"], order["total_amount"]) == ("Иван Петров", "2270.50")
