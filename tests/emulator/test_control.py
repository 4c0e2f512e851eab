from __future__ import annotations

from .conftest import REST, Emulator


async def test_calls_log_in_arrival_order_with_headers(emu: Emulator) -> None:
    await emu.call("user.current", headers={"X-Request-Id": "req-1"})
    await emu.call("no.method")
    await emu.client.post("/rest/1/wrong/user.current")
    calls = (await emu.client.get("/_emulator/calls")).json()
    assert [(c["seq"], c["method"], c["status"], c["error"]) for c in calls] == [
        (1, "user.current", 200, None),
        (2, "no.method", 404, "ERROR_METHOD_NOT_FOUND"),
        (3, "user.current", 401, "INVALID_CREDENTIALS"),
    ]
    assert calls[0]["headers"]["x-request-id"] == "req-1"
    assert calls[0]["commands"] is None
    assert calls[0]["t"] == emu.clock.now
    newer = (await emu.client.get("/_emulator/calls", params={"since": 2})).json()
    assert [c["seq"] for c in newer] == [3]
    by_method = (await emu.client.get("/_emulator/calls", params={"method": "no.method"})).json()
    assert [c["seq"] for c in by_method] == [2]


async def test_calls_log_keeps_the_parsed_arguments(emu: Emulator) -> None:
    await emu.client.post(f"{REST}/tasks.task.list", data={"filter[>ID]": "5", "select[]": "ID"})
    [call] = (await emu.client.get("/_emulator/calls")).json()
    assert call["args"] == {"filter": {">ID": "5"}, "select": ["ID"]}


async def test_reset_clears_everything_but_ids_keep_growing(emu: Emulator) -> None:
    await emu.add_task()
    await emu.client.post("/_emulator/faults", json={"kind": "latency", "latency_s": 0.01})
    assert (await emu.client.post("/_emulator/reset")).json() == {"reset": True}
    assert (await emu.client.get("/_emulator/calls")).json() == []
    assert (await emu.client.get("/_emulator/events")).json() == []
    assert (await emu.client.get("/_emulator/faults")).json() == []
    assert (await emu.client.get("/_emulator/tasks")).json() == []
    assert (await emu.add_task())["id"] == "2"


async def test_task_state_view(emu: Emulator) -> None:
    await emu.add_task(TAGS=["instant_order"], DESCRIPTION="d")
    await emu.ok(
        "task.commentitem.add", {"TASKID": 1, "FIELDS": {"POST_MESSAGE": "c", "AUTHOR_ID": 4}}
    )
    state = (await emu.client.get("/_emulator/tasks/1")).json()
    assert state["id"] == 1
    assert state["status"] == 2
    assert state["tags"] == ["instant_order"]
    assert state["description"] == "d"
    assert state["comments"] == [
        {
            "id": 1,
            "task_id": 1,
            "author_id": 4,
            "text": "c",
            "post_date": state["created_date"],
            "new_card": False,
            "message_id": None,
            "files": [],
        }
    ]
    assert (state["chat_id"], state["messages"]) == (None, [])
    assert (await emu.client.get("/_emulator/tasks/2")).status_code == 404


async def test_settings_validate_and_report(emu: Emulator) -> None:
    current = (await emu.client.get("/_emulator/settings")).json()
    assert current["events_enabled"] is True
    bad = await emu.client.post("/_emulator/settings", json={"rps": -1})
    assert bad.status_code == 400
    unknown = await emu.client.post("/_emulator/settings", json={"colour": "red"})
    assert unknown.status_code == 400
    changed = await emu.client.post(
        "/_emulator/settings",
        json={
            "handler_url": "http://x/hook",
            "application_token": "t",
            "sign_secret": "s",
            "operating_limit_s": 1,
            "operating_costs": {"user.current": 2},
        },
    )
    assert changed.json()["handler_url"] == "http://x/hook"
    await emu.call("user.current")
    assert (await emu.call("user.current")).status_code == 429
    limits = (await emu.client.get("/_emulator/limits")).json()
    assert limits["operating"]["user.current"]["blocked_until"] is not None


async def test_person_api_creates_updates_and_validates(emu: Emulator) -> None:
    created = await emu.client.post(
        "/_emulator/person/tasks",
        json={
            "title": "T",
            "description": "D",
            "responsible_id": 5,
            "created_by": 3,
            "tags": ["instant_order"],
        },
    )
    assert created.status_code == 201
    task = created.json()
    assert (task["responsible_id"], task["created_by"], task["tags"]) == (5, 3, ["instant_order"])
    patched = await emu.client.patch("/_emulator/person/tasks/1", json={"tags": [], "title": "T2"})
    assert (patched.json()["tags"], patched.json()["title"]) == ([], "T2")
    child = await emu.client.post(
        "/_emulator/person/tasks", json={"title": "sub", "responsible_id": 5, "parent_id": 1}
    )
    assert child.json()["parent_id"] == 1
    missing_title = await emu.client.post("/_emulator/person/tasks", json={"responsible_id": 5})
    assert missing_title.status_code == 400
    assert missing_title.json() == {"error": "ERROR_CORE", "detail": "Task title not specified"}
    unknown = await emu.client.post("/_emulator/person/tasks", json={"title": "x", "bogus": 1})
    assert unknown.status_code == 400
    assert (
        await emu.client.patch("/_emulator/person/tasks/99", json={"title": "x"})
    ).status_code == 404


async def test_person_status_actions(emu: Emulator) -> None:
    await emu.add_task()
    url = "/_emulator/person/tasks/1/status"
    assert (await emu.client.post(url, json={"action": "complete"})).json()["status"] == 5
    conflict = await emu.client.post(url, json={"action": "complete"})
    assert conflict.status_code == 409
    assert (await emu.client.post(url, json={"action": "renew"})).json()["status"] == 2
    assert (await emu.client.post(url, json={"action": "fly"})).status_code == 400


async def test_control_errors_are_json_not_tracebacks(emu: Emulator) -> None:
    response = await emu.client.post("/_emulator/faults", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert (await emu.client.get("/_emulator/calls", params={"since": "x"})).status_code == 400
    assert (await emu.client.get("/_emulator/health")).json() == {"status": "ok"}


async def test_person_acts_as_someone_other_than_the_webhook_user(emu: Emulator) -> None:
    # The middleware ignores changes by its own webhook user (rest user 1), so a
    # person who names nobody must not be that user.
    task = (
        await emu.client.post("/_emulator/person/tasks", json={"title": "t", "responsible_id": 5})
    ).json()
    assert task["created_by"] == 2 and task["changed_by"] == 2
    comment = (
        await emu.client.post(f"/_emulator/person/tasks/{task['id']}/comments", json={"text": "hi"})
    ).json()
    assert comment["author_id"] == 2
