from __future__ import annotations

from .conftest import ENVELOPE_TIME_KEYS, Emulator, EmulatorFactory


async def test_add_returns_the_task_with_camel_case_keys_and_string_ids(emu: Emulator) -> None:
    data = await emu.ok(
        "tasks.task.add",
        {"fields": {"TITLE": "Deliver", "RESPONSIBLE_ID": 123, "DESCRIPTION": "- A | a | 1 | 2"}},
    )
    assert set(data) == {"result", "time"}
    assert set(data["time"]) == ENVELOPE_TIME_KEYS
    task = data["result"]["task"]
    assert task["id"] == "1"
    assert task["title"] == "Deliver"
    assert task["responsibleId"] == "123"
    assert task["createdBy"] == "1"
    assert task["status"] == "2"
    assert task["parentId"] is None
    assert task["createdDate"].endswith("+03:00")
    assert task["responsible"]["id"] == "123"
    assert "tags" not in task


async def test_add_accepts_tags_as_a_list_and_stores_them(emu: Emulator) -> None:
    task = await emu.add_task(TAGS=["instant_order", "vip", "instant_order"])
    state = (await emu.client.get(f"/_emulator/tasks/{task['id']}")).json()
    assert state["tags"] == ["instant_order", "vip"]


async def test_add_accepts_camel_case_fields_and_custom_fields(emu: Emulator) -> None:
    data = await emu.ok(
        "tasks.task.add",
        {"fields": {"title": "x", "responsibleId": 4, "UF_CRM_TASK": ["D_10"]}},
    )
    task = data["result"]["task"]
    assert task["responsibleId"] == "4"
    assert task["ufCrmTask"] == ["D_10"]


async def test_add_without_fields_is_error_100(emu: Emulator) -> None:
    response = await emu.call("tasks.task.add", {})
    assert response.status_code == 400
    assert response.json() == {
        "error": "100",
        "error_description": "Could not find value for parameter {fields} (internal error)",
    }


async def test_add_validates_title_assignee_status_and_parent(emu: Emulator) -> None:
    cases = [
        ({"RESPONSIBLE_ID": 1}, "Task title not specified<br>"),
        ({"TITLE": "x"}, "Assignee not specified<br>"),
        (
            {"TITLE": "x", "RESPONSIBLE_ID": "abc"},
            'User specified in the "Assignee" field not found<br>',
        ),
        ({"TITLE": "x", "RESPONSIBLE_ID": 1, "STATUS": 9}, "Invalid status<br>"),
        (
            {"TITLE": "x", "RESPONSIBLE_ID": 1, "PARENT_ID": 99},
            'Task specified in the "Parent Task" field not found<br>',
        ),
    ]
    for fields, description in cases:
        response = await emu.call("tasks.task.add", {"fields": fields})
        assert response.status_code == 400
        assert response.json() == {"error": "ERROR_CORE", "error_description": description}
    assert emu.portal.store.tasks == {}


async def test_get_returns_tags_only_when_selected(emu: Emulator) -> None:
    created = await emu.add_task(TAGS=["instant_order"])
    data = await emu.ok("tasks.task.get", {"taskId": int(created["id"])})
    task = data["result"]["task"]
    assert task["id"] == created["id"]
    assert "tags" not in task
    selected = await emu.ok(
        "tasks.task.get", {"taskId": created["id"], "select": ["TITLE", "TAGS"]}
    )
    task = selected["result"]["task"]
    assert set(task) == {"id", "title", "tags", "action"}
    # The same shape as tasks.task.list's.
    listed = await emu.ok("tasks.task.list", {"filter": {"ID": created["id"]}, "select": ["TAGS"]})
    assert task["tags"] == listed["result"]["tasks"][0]["tags"]
    assert [t["title"] for t in task["tags"].values()] == ["instant_order"]


async def test_a_portal_whose_get_ignores_tags(make_emulator: EmulatorFactory) -> None:
    emu = await make_emulator(task_get_tags=False)
    created = await emu.add_task(TAGS=["instant_order"])
    selected = await emu.ok(
        "tasks.task.get", {"taskId": created["id"], "select": ["TITLE", "TAGS"]}
    )
    assert "tags" not in selected["result"]["task"]


async def test_get_of_a_missing_task_is_an_empty_array(emu: Emulator) -> None:
    data = await emu.ok("tasks.task.get", {"taskId": 404})
    assert data["result"] == []


async def test_get_argument_errors(emu: Emulator) -> None:
    missing = await emu.call("tasks.task.get", {})
    assert missing.status_code == 400
    assert missing.json()["error"] == "100"
    wrong = await emu.call("tasks.task.get", {"taskId": "abc"})
    assert wrong.json() == {"error": "0", "error_description": "wrong task id"}
    bad_select = await emu.call("tasks.task.get", {"taskId": 1, "select": "ID"})
    assert bad_select.status_code == 400
    assert bad_select.json()["error"] == "100"


async def test_update_changes_fields_and_tags(emu: Emulator) -> None:
    created = await emu.add_task(TAGS=["a"])
    emu.clock.advance(5)
    data = await emu.ok(
        "tasks.task.update",
        {"taskId": created["id"], "fields": {"TITLE": "renamed", "TAGS": ["b", "c"]}},
    )
    task = data["result"]["task"]
    assert task["title"] == "renamed"
    assert task["changedDate"] > created["changedDate"]
    state = (await emu.client.get(f"/_emulator/tasks/{created['id']}")).json()
    assert state["tags"] == ["b", "c"]


async def test_update_errors(emu: Emulator) -> None:
    created = await emu.add_task()
    missing = await emu.call("tasks.task.update", {"taskId": 999, "fields": {"TITLE": "x"}})
    assert missing.status_code == 400
    assert missing.json()["error"] == "0"
    no_fields = await emu.call("tasks.task.update", {"taskId": created["id"]})
    assert no_fields.json()["error"] == "100"
    to_itself = await emu.call(
        "tasks.task.update", {"taskId": created["id"], "fields": {"PARENT_ID": created["id"]}}
    )
    assert to_itself.json()["error_description"] == "Cannot bind the node to itself<br>"


async def test_update_refuses_a_parent_cycle(emu: Emulator) -> None:
    parent = await emu.add_task()
    child = await emu.add_task(PARENT_ID=parent["id"])
    response = await emu.call(
        "tasks.task.update", {"taskId": parent["id"], "fields": {"PARENT_ID": child["id"]}}
    )
    assert response.json()["error_description"] == (
        "Creating cyclic links in tasks is prohibited<br>"
    )


async def test_status_methods_follow_the_status_codes(emu: Emulator) -> None:
    task_id = (await emu.add_task())["id"]

    async def act(action: str) -> str:
        data = await emu.ok(f"tasks.task.{action}", {"taskId": task_id})
        status: str = data["result"]["task"]["status"]
        return status

    assert await act("start") == "3"
    assert await act("pause") == "2"
    assert await act("defer") == "6"
    assert await act("renew") == "2"
    assert await act("complete") == "5"
    done = await emu.ok("tasks.task.get", {"taskId": task_id})
    assert done["result"]["task"]["closedDate"] is not None
    again = await emu.call("tasks.task.complete", {"taskId": task_id})
    assert again.status_code == 400
    assert again.json() == {"error": "0", "error_description": "Action on the task is not allowed"}
    assert await act("renew") == "2"
    # From pending a task cannot be paused, nor renewed; the page's code is 1048582.
    for action in ("pause", "renew"):
        refused = await emu.call(f"tasks.task.{action}", {"taskId": task_id})
        assert refused.json() == {
            "error": "1048582",
            "error_description": "Action on the task is not allowed",
        }


async def test_status_method_on_missing_task_is_not_allowed(emu: Emulator) -> None:
    response = await emu.call("tasks.task.start", {"taskId": 77})
    assert response.status_code == 400
    assert response.json()["error"] == "0"


async def test_delete_removes_the_task_and_its_comments(emu: Emulator) -> None:
    task_id = (await emu.add_task())["id"]
    await emu.ok("task.commentitem.add", {"TASKID": task_id, "FIELDS": {"POST_MESSAGE": "x"}})
    data = await emu.ok("tasks.task.delete", {"taskId": task_id})
    assert data["result"] == {"task": True}
    assert emu.portal.store.comments == {}
    again = await emu.call("tasks.task.delete", {"taskId": task_id})
    assert again.json()["error"] == "1048582"


async def test_user_get_and_current(emu: Emulator) -> None:
    await emu.add_task(RESPONSIBLE_ID=9)
    listing = await emu.ok("user.get")
    assert [u["ID"] for u in listing["result"]] == ["1", "9"]
    assert listing["total"] == 2
    one = await emu.ok("user.get", {"ID": 42})
    assert one["result"][0]["ID"] == "42"
    assert one["result"][0]["ACTIVE"] is True
    assert (await emu.ok("user.current"))["result"]["ID"] == "1"


async def test_hashtags_in_title_and_description_become_tags_like_on_a_portal(
    emu: Emulator,
) -> None:
    task = await emu.add_task(
        TITLE="#urgent Доставка",
        DESCRIPTION="Заказ #instant_order, звонить\tзаранее #вечер.\n[B]#bold[/B] a#b #x<y",
        TAGS=["vip"],
    )
    state = (await emu.client.get(f"/_emulator/tasks/{task['id']}")).json()
    # "[B]#bold" has a bracket before "#", "a#b" no space: neither is a tag.
    assert state["tags"] == ["vip", "urgent", "instant_order", "вечер.", "x"]


async def test_an_update_keeps_the_tags_and_adds_the_texts_hashtags(emu: Emulator) -> None:
    task = await emu.add_task(TAGS=["vip"], DESCRIPTION="plain")
    await emu.ok("tasks.task.update", {"taskId": task["id"], "fields": {"TITLE": "now #late"}})
    state = (await emu.client.get(f"/_emulator/tasks/{task['id']}")).json()
    assert state["tags"] == ["vip", "late"]
    # Clearing the tags leaves those the text still carries.
    await emu.ok("tasks.task.update", {"taskId": task["id"], "fields": {"TAGS": ""}})
    state = (await emu.client.get(f"/_emulator/tasks/{task['id']}")).json()
    assert state["tags"] == ["late"]


async def test_hashtags_in_title_and_description_become_tags(emu: Emulator) -> None:
    task = await emu.add_task(
        TITLE="Street sale #urgent",
        DESCRIPTION="#instant_order\n- SKU | x | 1 | 1\n[b24mw:0a1b2c3d4e5f]\nissue#5 #a,b",
        TAGS=["mine"],
    )
    stored = emu.portal.store.tasks[int(task["id"])]
    # A #word after whitespace is a tag; our bracketed marker and "issue#5" are not.
    assert stored.tags == ["mine", "urgent", "instant_order", "a"]
    await emu.ok("tasks.task.update", {"taskId": task["id"], "fields": {"DESCRIPTION": "ok #new"}})
    assert stored.tags == ["mine", "urgent", "instant_order", "a", "new"]
