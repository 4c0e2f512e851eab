"""On both task cards — the classic one (comments) and the new one (tasks
25.700+: comments are messages of the task's chat) — comments become orders,
their history and photos are recorded, our own comments are recognised, and
an answer whose delivery is unclear is never posted twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from b24mw.history.repository import HistoryRepository
from b24mw.kit.db import Database
from b24mw.models.ops import WebhookInbox
from tests.support.outbound import jobs
from tests.support.portal import COURIER_USER, PERSON, Portal, add_courier, open_portal

ORDER = """#instant_order
- SKU-1 | Чехол | 2 | 490,00
customer: Иван Петров
"""
OURS = 1  # the webhook user: b24mw itself


@pytest.fixture(params=["classic", "new"])
def task_card(request: pytest.FixtureRequest) -> str:
    card: str = request.param
    return card


@pytest.fixture
async def portal(db: Database, tmp_path: Path, task_card: str) -> AsyncIterator[Portal]:
    p = await open_portal(
        db,
        tmp_path,
        task_card=task_card,
        outbox_late_apply_s=0.3,
        outbox_retry_delays="0.05,0.05,0.05,0.05",
    )
    try:
        yield p
    finally:
        await p.close()


async def settle(portal: Portal, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Until every event is delivered and processed and no outbox job is open
    (an answer waiting out a late apply included)."""
    deadline = time.monotonic() + timeout
    while True:
        await portal.settle()
        await portal.portal.join_late()
        open_jobs = [j for j in await jobs(portal.db) if j.status in ("pending", "in_flight")]
        waiting = [r for r in await portal.inbox() if r.status in ("pending", "processing")]
        if not open_jobs and not waiting and not portal.portal.late_pending:
            await portal.settle()
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"still open: {open_jobs} {waiting}")
        await asyncio.sleep(0.05)


async def answers(portal: Portal, task_id: int) -> list[dict[str, Any]]:
    """What b24mw wrote into the task: comments, or messages of its chat."""
    return [c for c in (await portal.task(task_id))["comments"] if c["author_id"] == OURS]


async def linked_task(portal: Portal) -> tuple[int, int]:
    """A task whose description became an order: (task id, order id)."""
    task_id = await portal.create_task(ORDER)
    await settle(portal)
    [order] = await portal.orders()
    return task_id, order["id"]


async def test_hashtag_comment_becomes_an_order_for_its_author(
    portal: Portal, db: Database, task_card: str
) -> None:
    await add_courier(db, "c-23", 23, "Анна")
    task_id = await portal.create_task("Просто задача", tags=[])
    said = await portal.comment(
        task_id, "#instant_order\n- A-1 | Вода | 3 | 50\ncustomer: Ольга", author_id=23
    )
    assert said["new_card"] is (task_card == "new")
    await settle(portal)

    [order] = await portal.orders()
    assert (order["origin"], order["courier_id"], order["total_amount"]) == (
        "b24_comment",
        "c-23",
        "150.00",
    )
    [answer] = await answers(portal, task_id)
    assert f"Заказ {order['id']} создан" in answer["text"]
    assert answer["new_card"] is (task_card == "new")
    # Our answer raised its own event: recognised, and nothing answered it.
    notes = [e["code"] for r in await portal.inbox() for e in r.errors]
    assert "own_comment" in notes
    assert {r.status for r in await portal.inbox()} == {"done"}


async def test_comment_and_photo_history_is_recorded_once(
    portal: Portal, db: Database, task_card: str
) -> None:
    task_id, order_id = await linked_task(portal)
    first = await portal.comment(
        task_id,
        "Выехал к клиенту",
        author_id=COURIER_USER,
        files=[{"name": "door.jpg"}, {"name": "receipt.jpg"}],
    )
    # The same photo again (attached from Drive) and a comment with no text.
    again = await portal.comment(
        task_id, "", author_id=COURIER_USER, files=[{"id": first["files"][0]}]
    )
    await settle(portal)

    history = await portal.history(order_id)
    key = "message_id" if task_card == "new" else "comment_id"
    comments = [e for e in history if e["type"] == "comment" and e["payload"].get("source")]
    assert [(c["payload"][key], c["payload"]["text"]) for c in comments] == [
        (first["id"], "Выехал к клиенту"),
        (again["id"], ""),
    ]
    assert all(c["actor_id"] == f"b24:{COURIER_USER}" for c in comments)
    photos = [e for e in history if e["type"] == "photo"]
    assert sorted((p["payload"]["file_id"], p["payload"]["name"]) for p in photos) == [
        (str(first["files"][0]), "door.jpg"),
        (str(first["files"][1]), "receipt.jpg"),
    ]
    # The comments' events processed again (a replay) record nothing new.
    before = len(history)
    async with db.unit_of_work() as session:
        await session.execute(
            update(WebhookInbox)
            .where(WebhookInbox.event == "ONTASKCOMMENTADD")
            .values(status="pending")
        )
    await settle(portal)
    after = await portal.history(order_id)
    assert len(after) == before, [(e["type"], e["payload"]) for e in after[before:]]


async def test_a_bbcode_comment_becomes_the_order_a_person_sees(portal: Portal) -> None:
    task_id = await portal.create_task("Просто задача", tags=[])
    stored = (
        "[P]#instant_order[/P][LIST][*][B]SKU-1[/B] | Чехол | 2 | 490,00"
        "[*]SKU-2 | Зарядка [I]USB-C[/I] | 1 | 1 290.50[/LIST]"
        "[P]customer: [USER=31]Иван Петров[/USER][BR]phone: 8 912 345-67-89[/P]"
    )
    await portal.comment(task_id, stored, author_id=COURIER_USER)
    await settle(portal)

    [order] = await portal.orders()
    assert [(i["sku"], i["name"], i["qty"]) for i in order["items"]] == [
        ("SKU-1", "Чехол", 2),
        ("SKU-2", "Зарядка USB-C", 1),
    ]
    assert (order["customer_name"], order["client_phone"], order["total_amount"]) == (
        "Иван Петров",
        "+79123456789",
        "2270.50",
    )


async def test_our_own_comments_leave_no_history(portal: Portal) -> None:
    task_id, order_id = await linked_task(portal)
    await portal.comment(task_id, "[b24mw:0] looks like ours", author_id=COURIER_USER)
    await portal.comment(task_id, "written as our user", author_id=OURS)
    await settle(portal)

    history = await portal.history(order_id)
    assert [e for e in history if e["payload"].get("source") == "bitrix24"] == []
    assert len(await answers(portal, task_id)) == 2  # our answer, and the one "as us"
    notes = [e["code"] for r in await portal.inbox() for e in r.errors]
    assert notes.count("own_comment") == 3


async def test_a_lost_answer_is_looked_up_and_never_posted_twice(
    portal: Portal, task_card: str
) -> None:
    # The portal writes our answer, and the answer to our call is lost.
    await portal.http.post(
        "/_emulator/faults",
        json={"kind": "http_500", "method": "task.commentitem.add", "count": 1, "phase": "after"},
    )
    task_id, _ = await linked_task(portal)
    [answer] = await answers(portal, task_id)
    [job] = [j for j in await jobs(portal.db) if j.payload.get("method") == "task.commentitem.add"]
    assert (job.status, job.result) == ("done", answer["id"])
    assert job.error_history[0]["code"] == "INTERNAL_SERVER_ERROR"
    looked_up = await methods_called(portal)
    # The task read says which card: found in its chat, or among its comments.
    assert looked_up[-2:] == [
        "tasks.task.get",
        "im.dialog.messages.get" if task_card == "new" else "task.commentitem.getlist",
    ]


async def test_an_answer_applied_late_is_not_posted_twice(portal: Portal) -> None:
    # The answer is lost at once; the portal writes the comment 0.2 s later.
    await portal.http.post(
        "/_emulator/faults",
        json={
            "kind": "http_500",
            "method": "task.commentitem.add",
            "count": 1,
            "phase": "after",
            "apply_delay_s": 0.2,
        },
    )
    task_id, _ = await linked_task(portal)
    assert len(await answers(portal, task_id)) == 1
    assert (await methods_called(portal)).count("task.commentitem.add") == 1


async def test_an_answer_that_never_landed_is_sent_again_once(portal: Portal) -> None:
    # Lost at the proxy before the portal ran it: the lookup finds nothing.
    await portal.http.post(
        "/_emulator/faults",
        json={"kind": "html_502", "method": "task.commentitem.add", "count": 1},
    )
    task_id, _ = await linked_task(portal)
    assert len(await answers(portal, task_id)) == 1
    assert (await methods_called(portal)).count("task.commentitem.add") == 2


async def methods_called(portal: Portal) -> list[str]:
    """Every Bitrix24 method called, batch commands one by one."""
    methods: list[str] = []
    for call in portal.portal.calls.since(0, None):
        if call["method"] == "batch":
            methods += [c["method"] for c in call["commands"] or []]
        else:
            methods.append(call["method"])
    return methods


# ------------------------------------------------------ the new card only


async def new_card_portal(db: Database, tmp_path: Path, **settings: object) -> Portal:
    values: dict[str, Any] = {"outbox_retry_delays": "0.05,0.05,0.05,0.05", **settings}
    return await open_portal(db, tmp_path, task_card="new", **values)


async def test_the_chat_is_searched_page_by_page_back_to_our_answer(
    db: Database, tmp_path: Path
) -> None:
    portal = await new_card_portal(db, tmp_path, outbox_late_apply_s=1.0)
    try:
        await portal.http.post(
            "/_emulator/faults",
            json={
                "kind": "http_500",
                "method": "task.commentitem.add",
                "count": 1,
                "phase": "after",
            },
        )
        task_id = await portal.create_task(ORDER)
        await portal.settle()  # the order, and its answer written with the answer lost
        [answer] = await answers(portal, task_id)
        # While b24mw waits out a late apply, people write 60 messages.
        portal.portal.apply_settings({"events_enabled": False})
        for n in range(60):
            await portal.comment(task_id, f"сообщение {n}", author_id=PERSON)
        portal.portal.apply_settings({"events_enabled": True})
        await settle(portal)

        assert len(await answers(portal, task_id)) == 1
        pages = [
            c["args"]
            for call in portal.portal.calls.since(0, None)
            for c in (call["commands"] or [call])
            if c["method"] == "im.dialog.messages.get"
            and "LAST_ID" in c["args"]
            and int(c["args"]["LIMIT"]) == 50
        ]
        # The newest 50 messages, then the page before the oldest of them.
        assert len(pages) == 2
        assert int(pages[0]["LAST_ID"]) == 0 and int(pages[1]["LAST_ID"]) > answer["id"]
        [job] = [j for j in await jobs(db) if j.payload.get("method") == "task.commentitem.add"]
        assert (job.status, job.result, "lookup" in job.payload) == ("done", answer["id"], False)
    finally:
        await portal.close()


async def test_without_the_im_scope_the_comment_waits_with_a_clear_error(
    db: Database, tmp_path: Path
) -> None:
    portal = await new_card_portal(db, tmp_path)
    try:
        portal.portal.apply_settings({"webhook_scope": "task,user"})
        task_id = await portal.create_task("Просто задача", tags=[])
        await portal.settle()
        await portal.comment(task_id, ORDER, author_id=COURIER_USER)
        await portal.settle()

        [row] = [r for r in await portal.inbox() if r.event == "ONTASKCOMMENTADD"]
        assert row.status == "pending"
        [error] = row.errors
        assert error["code"] == "insufficient_scope"
        assert "'im' scope" in error["message"] and "README" in error["message"]
        async with db.reader() as session:
            logged = await HistoryRepository(session).logs(system="b24")
        assert [(r.endpoint, r.error_code) for r in logged if r.error_code] == [
            ("im.dialog.messages.get", "insufficient_scope")
        ]
        assert await portal.orders() == []

        # The administrator grants the scope: the kept event makes the order.
        portal.portal.apply_settings({"webhook_scope": "task,user,im"})
        await settle(portal)
        [order] = await portal.orders()
        assert (order["task_id_b24"], order["origin"]) == (task_id, "b24_comment")
    finally:
        await portal.close()


async def test_without_the_im_scope_the_event_fails_visibly_after_the_last_attempt(
    db: Database, tmp_path: Path
) -> None:
    portal = await new_card_portal(db, tmp_path, webhook_inbox_max_attempts=1)
    try:
        portal.portal.apply_settings({"webhook_scope": "task,user"})
        task_id = await portal.create_task("Просто задача", tags=[])
        await portal.comment(task_id, ORDER, author_id=COURIER_USER)
        await portal.settle()

        [row] = [r for r in await portal.inbox() if r.event == "ONTASKCOMMENTADD"]
        assert (row.status, row.errors[-1]["code"]) == ("failed", "insufficient_scope")
        async with db.reader() as session:
            [failed] = await HistoryRepository(session).logs(status="failed")
        assert (failed.endpoint, failed.error_code, failed.resource_ref) == (
            "ONTASKCOMMENTADD",
            "insufficient_scope",
            f"task:{task_id}",
        )
    finally:
        await portal.close()


async def test_a_system_message_is_not_a_comment(db: Database, tmp_path: Path) -> None:
    portal = await new_card_portal(db, tmp_path)
    try:
        task_id, order_id = await linked_task(portal)
        started = await portal.http.post(
            f"/_emulator/person/tasks/{task_id}/status", json={"action": "start"}
        )
        assert started.status_code == 200
        await settle(portal)
        system = [m for m in (await portal.task(task_id))["messages"] if m["author_id"] == 0]
        assert "started the task" in system[-1]["text"]
        # Were a portal to announce it like a comment, it stays what it is.
        event = {
            "event": "ONTASKCOMMENTADD",
            "data": {
                "FIELDS_BEFORE": "undefined",
                "FIELDS_AFTER": {
                    "ID": "0",
                    "TASK_ID": str(task_id),
                    "MESSAGE_ID": str(system[-1]["id"]),
                },
                "IS_ACCESSIBLE_BEFORE": "undefined",
                "IS_ACCESSIBLE_AFTER": "undefined",
            },
            "ts": str(int(portal.hook.clock())),
            "auth": {"domain": "portal.example", "application_token": "x"},
        }
        assert (await portal.hook.post_signed(event)).status_code == 200
        await settle(portal)

        [row] = [
            r
            for r in await portal.inbox()
            if r.payload["data"]["FIELDS_AFTER"].get("MESSAGE_ID") == str(system[-1]["id"])
        ]
        assert [e["code"] for e in row.errors] == ["system_message"]
        history = await portal.history(order_id)
        statuses = [
            e["payload"]["b24_status_name"]
            for e in history
            if e["type"] == "status" and e["payload"].get("source")
        ]
        assert statuses == ["in_progress"]
    finally:
        await portal.close()


async def test_a_comment_on_a_task_deleted_before_the_read_is_noted(
    db: Database, tmp_path: Path
) -> None:
    portal = await new_card_portal(db, tmp_path)
    try:
        task_id = await portal.create_task("Просто задача", tags=[])
        await portal.settle()
        portal.portal.apply_settings({"events_enabled": False})
        await portal.comment(task_id, ORDER, author_id=COURIER_USER)
        [lost] = [e for e in portal.portal.events.log if e["event"] == "ONTASKCOMMENTADD"]
        assert (await portal.http.delete(f"/_emulator/person/tasks/{task_id}")).status_code == 200
        from b24mw.emulator.wire.phpquery import parse_pairs

        payload = parse_pairs(list(lost["form"].items()))
        assert (await portal.hook.post_signed(payload)).status_code == 200  # type: ignore[arg-type]
        await settle(portal)
        [row] = [r for r in await portal.inbox() if r.event == "ONTASKCOMMENTADD"]
        assert (row.status, [e["code"] for e in row.errors]) == ("done", ["task_not_found"])
        assert await portal.orders() == []
    finally:
        await portal.close()
