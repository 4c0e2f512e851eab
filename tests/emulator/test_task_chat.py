"""The new task card (tasks 25.700+): each task has a chat, comments are its
messages, and the old comment methods answer as the portal does there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Emulator, EmulatorFactory, Receiver
from .test_events import _delivered

NOT_FOUND = (
    "TASKS_ERROR_EXCEPTION_#512; Check listitem not found or not accessible; "
    "512/TE/ITEM_NOT_FOUND_OR_NOT_ACCESSIBLE<br>"
)
NOT_ALLOWED = "TASKS_ERROR_EXCEPTION_#4; Action is not allowed; 4/TE/ACTION_NOT_ALLOWED<br>"


@pytest.fixture
async def card(make_emulator: EmulatorFactory) -> Emulator:
    return await make_emulator(task_card="new")


async def chat_of(emu: Emulator, task_id: int) -> int:
    task = await emu.ok("tasks.task.get", {"taskId": task_id})
    chat_id: int = task["result"]["task"]["chatId"]
    return chat_id


async def say(emu: Emulator, task_id: int, text: str, author: int = 7, **extra: Any) -> Any:
    response = await emu.client.post(
        f"/_emulator/person/tasks/{task_id}/comments",
        json={"author_id": author, "text": text, **extra},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def messages(emu: Emulator, dialog: Any, **params: Any) -> list[dict[str, Any]]:
    data = await emu.ok("im.dialog.messages.get", {"DIALOG_ID": dialog, **params})
    result: list[dict[str, Any]] = data["result"]["messages"]
    return result


# ------------------------------------------------------------ the chat id


async def test_classic_portal_has_no_chat_id(emu: Emulator) -> None:
    await emu.add_task()
    task = (await emu.ok("tasks.task.get", {"taskId": 1}))["result"]["task"]
    assert "chatId" not in task


async def test_chat_id_is_returned_by_default_and_when_selected(card: Emulator) -> None:
    await card.add_task()
    await card.add_task()
    everything = (await card.ok("tasks.task.get", {"taskId": 2}))["result"]["task"]
    selected = await card.ok("tasks.task.get", {"taskId": 2, "select": ["ID", "CHAT_ID"]})
    other = await card.ok("tasks.task.get", {"taskId": 2, "select": ["ID", "TITLE"]})
    # A chat id of its own: never the task's id.
    assert everything["chatId"] == selected["result"]["task"]["chatId"] == 1002
    assert "chatId" not in other["result"]["task"]


async def test_switching_to_the_new_card_gives_every_task_a_chat(emu: Emulator) -> None:
    await emu.add_task()
    response = await emu.client.post("/_emulator/settings", json={"task_card": "new"})
    assert response.status_code == 200 and response.json()["task_card"] == "new"
    assert await chat_of(emu, 1) == 1001
    bad = await emu.client.post("/_emulator/settings", json={"task_card": "v3"})
    assert bad.status_code == 400


# --------------------------------------------------------- comments there


async def test_a_persons_comment_is_a_chat_message_with_an_id_zero_event(
    make_hooked: EmulatorFactory, receiver: Receiver
) -> None:
    emu = await make_hooked(task_card="new")
    await emu.add_task()
    message = await say(emu, 1, "#instant_order")
    forms = await _delivered(emu, receiver)
    assert forms[-1]["event"] == "ONTASKCOMMENTADD"
    assert forms[-1]["data[FIELDS_AFTER][ID]"] == "0"
    assert forms[-1]["data[FIELDS_AFTER][TASK_ID]"] == "1"
    assert forms[-1]["data[FIELDS_AFTER][MESSAGE_ID]"] == str(message["message_id"])
    [text] = [m for m in await messages(emu, "chat1001") if m["author_id"] == 7]
    assert (text["id"], text["text"]) == (message["message_id"], "#instant_order")


async def test_commentitem_add_still_works_and_writes_into_the_chat(
    make_hooked: EmulatorFactory, receiver: Receiver
) -> None:
    emu = await make_hooked(task_card="new")
    await emu.add_task()
    added = await emu.ok("task.commentitem.add", [1, {"POST_MESSAGE": "[B]ours[/B]"}])
    [ours] = [m for m in await messages(emu, "chat1001") if m["author_id"] == 1]
    assert added["result"] == ours["id"]
    assert ours["text"] == "[B]ours[/B]"
    forms = await _delivered(emu, receiver)
    assert (forms[-1]["data[FIELDS_AFTER][ID]"], forms[-1]["data[FIELDS_AFTER][MESSAGE_ID]"]) == (
        "0",
        str(ours["id"]),
    )


async def test_the_other_comment_methods_do_not_work_on_the_new_card(card: Emulator) -> None:
    await card.add_task()
    message_id = (await say(card, 1, "hello"))["message_id"]
    ours = (await card.ok("task.commentitem.add", [1, {"POST_MESSAGE": "ours"}]))["result"]

    listing = await card.ok("task.commentitem.getlist", [1])
    assert listing["result"] == []  # silently empty: the comments live in the chat
    for item in (message_id, ours, 0):
        got = await card.call("task.commentitem.get", [1, item])
        assert (got.status_code, got.json()["error_description"]) == (400, NOT_FOUND)
    update = await card.call("task.commentitem.update", [1, ours, {"POST_MESSAGE": "x"}])
    delete = await card.call("task.commentitem.delete", [1, ours])
    for refused in (update, delete):
        assert refused.status_code == 400
        assert refused.json() == {"error": "ERROR_CORE", "error_description": NOT_ALLOWED}


async def test_classic_update_and_delete_fire_their_events(
    hooked: Emulator, receiver: Receiver
) -> None:
    await hooked.add_task()
    await hooked.ok("task.commentitem.add", [1, {"POST_MESSAGE": "first"}])
    assert (await hooked.ok("task.commentitem.update", [1, 1, {"POST_MESSAGE": "edited"}]))[
        "result"
    ] is True
    got = await hooked.ok("task.commentitem.get", [1, 1])
    assert got["result"]["POST_MESSAGE"] == "edited"
    empty = await hooked.call("task.commentitem.update", [1, 1, {"POST_MESSAGE": " "}])
    assert empty.json()["error_description"] == "Comment text not specified<br>"
    assert (await hooked.ok("task.commentitem.delete", [1, 1]))["result"] is True
    assert (await hooked.ok("task.commentitem.getlist", [1]))["result"] == []
    gone = await hooked.call("task.commentitem.delete", [1, 1])
    assert gone.json()["error_description"] == NOT_ALLOWED

    forms = await _delivered(hooked, receiver)
    update, delete = forms[-2], forms[-1]
    assert update["event"] == "ONTASKCOMMENTUPDATE"
    assert (update["data[FIELDS_BEFORE][ID]"], update["data[FIELDS_AFTER][ACTION]"]) == (
        "1",
        "EDIT",
    )
    assert delete["event"] == "ONTASKCOMMENTDELETE"
    assert (delete["data[FIELDS_AFTER][TASK_ID]"], delete["data[FIELDS_AFTER][ACTION]"]) == (
        "1",
        "DEL",
    )


async def test_system_messages_have_author_zero_and_fire_no_event(
    make_hooked: EmulatorFactory, receiver: Receiver
) -> None:
    emu = await make_hooked(task_card="new")
    await emu.add_task()
    await emu.ok("tasks.task.start", {"taskId": 1})
    await emu.ok("tasks.task.complete", {"taskId": 1})
    chat = await messages(emu, "chat1001", FIRST_ID=0)
    assert [m["author_id"] for m in chat] == [0, 0, 0]
    assert [m["text"].split("[/USER] ")[1] for m in chat] == [
        "created the task",
        "started the task",
        "completed the task",
    ]
    assert all(m["uuid"] is None and m["params"] == [] for m in chat)
    events = [f["event"] for f in await _delivered(emu, receiver)]
    assert "ONTASKCOMMENTADD" not in events


# ------------------------------------------------- im.dialog.messages.get


async def person_task(emu: Emulator) -> int:
    """A task people made: the webhook user has no role in it (nothing unread)."""
    response = await emu.client.post(
        "/_emulator/person/tasks", json={"title": "t", "responsible_id": 7, "created_by": 42}
    )
    assert response.status_code == 201
    task_id: int = response.json()["id"]
    return task_id


async def _chat_with(card: Emulator, count: int) -> list[int]:
    """A task whose chat holds its creation message and ``count`` comments."""
    await person_task(card)
    ids = [m["id"] for m in await messages(card, "chat1001", FIRST_ID=0)]
    for n in range(count):
        ids.append((await say(card, 1, f"m{n}", author=40 + n % 3))["message_id"])
    return ids


async def test_paging_forward_backward_and_by_default(card: Emulator) -> None:
    ids = await _chat_with(card, 59)  # 60 messages
    newest = await messages(card, "chat1001")
    assert [m["id"] for m in newest] == ids[::-1][:20]  # default: the newest 20, newest first
    capped = await messages(card, "chat1001", LIMIT=500)
    assert len(capped) == 50
    forward = await messages(card, "chat1001", FIRST_ID=ids[10], LIMIT=5)
    assert [m["id"] for m in forward] == ids[11:16]  # right after FIRST_ID, oldest first
    backward = await messages(card, "chat1001", LAST_ID=ids[10], LIMIT=5)
    assert [m["id"] for m in backward] == ids[9:4:-1]  # right before LAST_ID, newest first
    from_top = await messages(card, "chat1001", LAST_ID=0, LIMIT=3)
    assert [m["id"] for m in from_top] == ids[:-4:-1]
    both = await messages(card, "chat1001", FIRST_ID=ids[0], LAST_ID=ids[5], LIMIT=2)
    assert [m["id"] for m in both] == ids[1:3]  # FIRST_ID wins
    unlimited = await messages(card, "chat1001", FIRST_ID=0, LIMIT=0)
    assert len(unlimited) == 60  # intval 0: the query has no limit
    past_the_end = await messages(card, "chat1001", FIRST_ID=ids[-1])
    assert past_the_end == []


async def test_message_fields_as_documented(card: Emulator) -> None:
    await person_task(card)
    await say(card, 1, "hi")
    data = (await card.ok("im.dialog.messages.get", {"DIALOG_ID": "chat1001"}))["result"]
    assert data["chat_id"] == 1001
    hi = data["messages"][0]
    assert set(hi) == {
        "id",
        "chat_id",
        "author_id",
        "date",
        "text",
        "unread",
        "uuid",
        "replaces",
        "params",
        "disappearing_date",
    }
    assert (hi["author_id"], hi["text"], hi["params"], hi["unread"]) == (7, "hi", [], False)
    assert hi["date"].endswith("+03:00")
    assert [u["id"] for u in data["users"]] == [7]  # authors; system messages have none
    assert data["files"] == []


async def test_a_member_with_unread_messages_gets_more_than_the_limit(card: Emulator) -> None:
    await card.add_task()
    ours = (await card.ok("task.commentitem.add", [1, {"POST_MESSAGE": "ours"}]))["result"]
    later = [(await say(card, 1, f"p{n}"))["message_id"] for n in range(2)]
    # Two unread, LIMIT 2: the limit grows by the unread count.
    grown = await messages(card, "chat1001", LIMIT=2)
    assert [m["id"] for m in grown] == [*later[::-1], ours, 1 + ours - 2]
    assert [m["unread"] for m in grown] == [True, True, False, False]
    # More unread than LIMIT: the unread ones after the last read, then older ones.
    later += [(await say(card, 1, f"q{n}"))["message_id"] for n in range(2)]
    page = await messages(card, "chat1001", LIMIT=2)
    assert [m["id"] for m in page] == [later[1], later[0], ours, ours - 1]
    # An explicit LAST_ID (0 = from the newest) never does this.
    assert [m["id"] for m in await messages(card, "chat1001", LAST_ID=0, LIMIT=2)] == [
        later[3],
        later[2],
    ]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, "DIALOG_ID_EMPTY"),
        ({"DIALOG_ID": "chat"}, 400, "DIALOG_ID_EMPTY"),
        ({"DIALOG_ID": "task1"}, 400, "DIALOG_ID_EMPTY"),
        ({"DIALOG_ID": "chat1001", "FIRST_ID": "-1"}, 400, "FIRST_ID_STRING"),
        ({"DIALOG_ID": "chat1001", "FIRST_ID": "1a"}, 400, "FIRST_ID_STRING"),
        ({"DIALOG_ID": "chat1001", "LAST_ID": "x"}, 400, "LAST_ID_STRING"),
        ({"DIALOG_ID": "chat9999"}, 403, "ACCESS_ERROR"),
        ({"DIALOG_ID": "1"}, 403, "ACCESS_ERROR"),
    ],
)
async def test_refusals(card: Emulator, params: dict[str, Any], status: int, code: str) -> None:
    await card.add_task()
    response = await card.call("im.dialog.messages.get", params)
    assert (response.status_code, response.json()["error"]) == (status, code)


async def test_a_chat_is_read_by_its_members_and_administrators(card: Emulator) -> None:
    # A task of people 42 and 7: the webhook user 1 reads it as an administrator.
    await person_task(card)
    assert await messages(card, "chat1001")
    # Acting as others (what a non-administrator webhook would be).
    try:
        card.portal.ctx.actor = 8  # no role in the task
        refused = await card.call("im.dialog.messages.get", {"DIALOG_ID": "chat1001"})
        assert (refused.status_code, refused.json()["error"]) == (403, "ACCESS_ERROR")
        card.portal.ctx.actor = 7  # the responsible person is a member
        assert await messages(card, "chat1001")
    finally:
        card.portal.ctx.actor = 1


# ------------------------------------------------------------------ files


async def test_files_on_chat_messages_as_the_docs_describe(card: Emulator) -> None:
    await person_task(card)
    first = await say(card, 1, "", files=[{"name": "photo.jpg", "size": 2144}, {"name": "a.pdf"}])
    again = await say(card, 1, "same photo", files=[{"id": first["files"][0]}])
    data = (await card.ok("im.dialog.messages.get", {"DIALOG_ID": "chat1001"}))["result"]
    by_id = {m["id"]: m for m in data["messages"]}
    assert by_id[first["id"]]["params"] == {"FILE_ID": first["files"]}
    assert by_id[first["id"]]["text"] == ""
    assert by_id[again["id"]]["params"] == {"FILE_ID": [first["files"][0]]}
    files = {f["id"]: f for f in data["files"]}
    photo = files[first["files"][0]]
    assert (photo["type"], photo["name"], photo["size"], photo["chatId"]) == (
        "image",
        "photo.jpg",
        2144,
        1001,
    )
    assert files[first["files"][1]]["type"] == "file"
    assert photo["urlDownload"].endswith(f"fileId={photo['id']}")
    unknown = await card.client.post(
        "/_emulator/person/tasks/1/comments", json={"text": "x", "files": [{"id": 1}]}
    )
    assert unknown.status_code == 400


async def test_classic_comments_carry_their_files_as_attached_objects(emu: Emulator) -> None:
    await emu.add_task()
    comment = await say(emu, 1, "photo", files=[{"name": "p.png", "size": 10}])
    got = (await emu.ok("task.commentitem.get", [1, comment["id"]]))["result"]
    [(key, attached)] = got["ATTACHED_OBJECTS"].items()
    assert attached["ATTACHMENT_ID"] == key
    assert (attached["FILE_ID"], attached["NAME"], attached["SIZE"]) == (
        str(comment["files"][0]),
        "p.png",
        "10",
    )


# ----------------------------------------------------------------- scopes


async def test_without_the_im_scope_chats_are_refused(make_emulator: EmulatorFactory) -> None:
    emu = await make_emulator(task_card="new", webhook_scope="task,user")
    await emu.add_task()
    top = await emu.call("im.dialog.messages.get", {"DIALOG_ID": "chat1001"})
    assert top.status_code == 403
    assert top.json() == {
        "error": "insufficient_scope",
        "error_description": (
            "The request requires higher privileges than provided by the webhook token"
        ),
    }
    batch = await emu.ok(
        "batch",
        {
            "halt": 0,
            "cmd": {
                "t": "tasks.task.get?taskId=1&select[]=CHAT_ID",
                "m": "im.dialog.messages.get?DIALOG_ID=chat$result[t][task][chatId]",
            },
        },
    )
    assert batch["result"]["result"]["t"]["task"]["chatId"] == 1001
    assert batch["result"]["result_error"]["m"]["error"] == "insufficient_scope"


async def test_a_batch_chains_the_task_read_into_its_chat(card: Emulator) -> None:
    await card.add_task()
    message = await say(card, 1, "#instant_order")
    batch = await card.ok(
        "batch",
        {
            "halt": 0,
            "cmd": {
                "t": "tasks.task.get?taskId=1&select[]=ID&select[]=CHAT_ID",
                "m": "im.dialog.messages.get?DIALOG_ID=chat$result[t][task][chatId]"
                f"&LAST_ID={message['id'] + 1}&LIMIT=1",
                "gone": "im.dialog.messages.get?DIALOG_ID=chat$result[x][task][chatId]",
            },
        },
    )
    [found] = batch["result"]["result"]["m"]["messages"]
    assert (found["id"], found["text"]) == (message["id"], "#instant_order")
    assert batch["result"]["result_error"]["gone"]["error"] == "DIALOG_ID_EMPTY"


# ------------------------------------------------------------ the portal


async def test_reset_and_task_deletion_drop_chats(card: Emulator) -> None:
    await card.add_task()
    await card.add_task()
    await say(card, 1, "x")
    assert (await card.ok("tasks.task.delete", {"taskId": 1}))["result"] == {"task": True}
    gone = await card.call("im.dialog.messages.get", {"DIALOG_ID": "chat1001"})
    assert gone.status_code == 403
    await card.client.post("/_emulator/reset")
    assert card.portal.store.chats == {} and card.portal.store.messages == {}
    await card.add_task()
    assert await chat_of(card, 3) == 1003  # ids are never reused


async def test_a_state_file_keeps_chats_and_adopts_old_chat_comments(
    make_emulator: EmulatorFactory, tmp_path: Path
) -> None:
    path = tmp_path / "portal.json"
    first = await make_emulator(task_card="new", state_file=path)
    await first.add_task()
    await say(first, 1, "kept", files=[{"name": "p.jpg"}])
    second = await make_emulator(task_card="new", state_file=path)
    kept = await messages(second, "chat1001", FIRST_ID=0)
    assert [m["text"] for m in kept][-1] == "kept"
    assert kept[-1]["params"]["FILE_ID"] == [9001]

    # A file written before chats existed: a chat message stored as a comment.
    data = json.loads(path.read_text())
    data.update(chats=[], messages=[], files=[])
    data["comments"] = [
        {
            "id": 1,
            "task_id": 1,
            "author_id": 7,
            "post_date": 1_750_000_000.0,
            "message": "old chat line",
            "new_card": True,
            "message_id": 3,
        }
    ]
    path.write_text(json.dumps(data))
    third = await make_emulator(task_card="new", state_file=path)
    state = (await third.client.get("/_emulator/tasks/1")).json()
    assert [(c["text"], c["message_id"]) for c in state["comments"]] == [("old chat line", 3)]
