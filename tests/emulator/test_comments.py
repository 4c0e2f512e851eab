from __future__ import annotations

from urllib.parse import urlencode

from .conftest import REST, Emulator


async def test_add_with_positional_json_object_returns_an_int_id(emu: Emulator) -> None:
    task_id = int((await emu.add_task())["id"])
    data = await emu.ok(
        "task.commentitem.add", {"TASKID": task_id, "FIELDS": {"POST_MESSAGE": "Hello"}}
    )
    assert data["result"] == 1
    assert isinstance(data["result"], int)


async def test_add_with_a_json_list(emu: Emulator) -> None:
    task_id = (await emu.add_task())["id"]
    data = await emu.ok("task.commentitem.add", [task_id, {"POST_MESSAGE": "from a list"}])
    state = (await emu.client.get(f"/_emulator/tasks/{task_id}")).json()
    assert state["comments"][0]["id"] == data["result"]
    assert state["comments"][0]["text"] == "from a list"


async def test_add_with_form_keys_and_with_query_keys(emu: Emulator) -> None:
    task_id = (await emu.add_task())["id"]
    form = await emu.client.post(
        f"{REST}/task.commentitem.add",
        content=urlencode(
            {"TASKID": task_id, "FIELDS[POST_MESSAGE]": "form", "FIELDS[AUTHOR_ID]": 5}
        ),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 200, form.text
    query = await emu.client.get(
        f"{REST}/task.commentitem.add", params={"TASKID": task_id, "FIELDS[POST_MESSAGE]": "query"}
    )
    assert query.status_code == 200, query.text
    comments = (await emu.client.get(f"/_emulator/tasks/{task_id}")).json()["comments"]
    assert [(c["text"], c["author_id"]) for c in comments] == [("form", 5), ("query", 1)]


async def test_parameters_in_the_wrong_order_fail_like_the_portal(emu: Emulator) -> None:
    task_id = int((await emu.add_task())["id"])
    response = await emu.call(
        "task.commentitem.add", {"FIELDS": {"POST_MESSAGE": "x"}, "TASKID": task_id}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "ERROR_CORE",
        "error_description": "TASKS_ERROR_EXCEPTION_#256; Param #0 (taskId) for method "
        'ctaskcommentitem::add() expected to be of type "integer", but given something else.; '
        "256/TE/WRONG_ARGUMENTS<br>",
    }


async def test_add_errors(emu: Emulator) -> None:
    task_id = int((await emu.add_task())["id"])
    no_fields = await emu.call("task.commentitem.add", {"TASKID": task_id})
    assert "Param #1 (arFields) expected" in no_fields.json()["error_description"]
    empty_text = await emu.call(
        "task.commentitem.add", {"TASKID": task_id, "FIELDS": {"POST_MESSAGE": " "}}
    )
    assert empty_text.json() == {
        "error": "ERROR_CORE",
        "error_description": "Comment text not specified<br>",
    }
    bad_key = await emu.call(
        "task.commentitem.add", {"TASKID": task_id, "FIELDS": {"POST_MESSAGE": "x", "TITLE": "y"}}
    )
    assert 'must not contain key "TITLE"' in bad_key.json()["error_description"]
    no_task = await emu.call(
        "task.commentitem.add", {"TASKID": 999, "FIELDS": {"POST_MESSAGE": "x"}}
    )
    assert no_task.status_code == 400
    assert no_task.json()["error"] == "ERROR_CORE"
    assert emu.portal.store.comments == {}


async def test_get_returns_the_documented_fields(emu: Emulator) -> None:
    task_id = int((await emu.add_task())["id"])
    comment_id = (
        await emu.ok(
            "task.commentitem.add",
            {"TASKID": task_id, "FIELDS": {"POST_MESSAGE": "Photos", "AUTHOR_ID": 503}},
        )
    )["result"]
    data = await emu.ok("task.commentitem.get", {"TASKID": task_id, "ITEMID": comment_id})
    comment = data["result"]
    assert comment["ID"] == str(comment_id)
    assert comment["AUTHOR_ID"] == "503"
    assert comment["POST_MESSAGE"] == "Photos"
    assert comment["POST_DATE"].endswith("+03:00")


async def test_get_of_a_missing_comment_is_error_core(emu: Emulator) -> None:
    task_id = int((await emu.add_task())["id"])
    response = await emu.call("task.commentitem.get", {"TASKID": task_id, "ITEMID": 5})
    assert response.status_code == 400
    assert "ITEM_NOT_FOUND_OR_NOT_ACCESSIBLE" in response.json()["error_description"]
    missing_item = await emu.call("task.commentitem.get", {"TASKID": task_id})
    assert "Param #1 (itemId) expected" in missing_item.json()["error_description"]


async def test_getlist_orders_and_filters(emu: Emulator) -> None:
    task_id = int((await emu.add_task())["id"])
    for author in (3, 4, 3):
        await emu.ok(
            "task.commentitem.add",
            {"TASKID": task_id, "FIELDS": {"POST_MESSAGE": f"by {author}", "AUTHOR_ID": author}},
        )
        emu.clock.advance(60)
    default = await emu.ok("task.commentitem.getlist", {"TASKID": task_id})
    assert [c["ID"] for c in default["result"]] == ["3", "2", "1"]
    filtered = await emu.ok(
        "task.commentitem.getlist",
        {"TASKID": task_id, "ORDER": {"ID": "asc"}, "FILTER": {"AUTHOR_ID": 3}},
    )
    assert [c["ID"] for c in filtered["result"]] == ["1", "3"]
    newer = await emu.ok("task.commentitem.getlist", [task_id, {"POST_DATE": "asc"}, {">ID": 1}])
    assert [c["ID"] for c in newer["result"]] == ["2", "3"]


async def test_getlist_with_filter_in_the_order_slot_fails(emu: Emulator) -> None:
    task_id = int((await emu.add_task())["id"])
    response = await emu.call(
        "task.commentitem.getlist", {"TASKID": task_id, "FILTER": {">=POST_DATE": "2025-01-01"}}
    )
    assert response.status_code == 400
    assert response.json()["error_description"] == (
        "TASKS_ERROR_EXCEPTION_#256; Param #1 (arOrder) for method ctaskcommentitem::getlist() "
        'must not contain key ">=POST_DATE".; 256/TE/WRONG_ARGUMENTS<br>'
    )
    bad_prefix = await emu.call("task.commentitem.getlist", [task_id, {}, {"%POST_DATE": "x"}])
    assert "Param #2 (arFilter)" in bad_prefix.json()["error_description"]
