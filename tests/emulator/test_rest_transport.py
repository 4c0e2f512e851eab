from __future__ import annotations

import pytest

from .conftest import REST, Emulator


async def test_wrong_webhook_credentials_are_401(emu: Emulator) -> None:
    for path in ("/rest/1/nope/user.current", "/rest/2/emulator/user.current"):
        response = await emu.client.post(path)
        assert response.status_code == 401
        assert response.json() == {
            "error": "INVALID_CREDENTIALS",
            "error_description": "Invalid request credentials",
        }


async def test_oauth_style_path_without_a_token_is_401(emu: Emulator) -> None:
    response = await emu.client.post("/rest/user.current")
    assert response.status_code == 401
    assert response.json()["error"] == "NO_AUTH_FOUND"


async def test_json_suffix_and_case_are_ignored_in_method_names(emu: Emulator) -> None:
    assert (await emu.client.get(f"{REST}/USER.Current.json")).status_code == 200


async def test_unknown_method_is_404(emu: Emulator) -> None:
    response = await emu.call("tasks.task.explode")
    assert response.status_code == 404
    assert response.json() == {
        "error": "ERROR_METHOD_NOT_FOUND",
        "error_description": "Method not found!",
    }


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{broken", "application/json"),
        (b'"just a string"', "application/json"),
    ],
)
async def test_malformed_bodies_are_400_without_a_trace(
    emu: Emulator, content: bytes, content_type: str
) -> None:
    response = await emu.client.post(
        f"{REST}/tasks.task.get", content=content, headers={"content-type": content_type}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "INVALID_REQUEST"


async def test_garbage_arguments_never_give_a_500(emu: Emulator) -> None:
    await emu.add_task()
    payloads = [
        {"taskId": {"a": 1}},
        {"taskId": [1, 2]},
        {"fields": "TITLE"},
        {"filter": "x", "order": ["ID"], "select": {"a": {"b": 1}}, "start": "abc"},
        {"TASKID": None, "FIELDS": None},
        [None, None, None],
        {"cmd": {"a": 5, "b": "?", "c": ""}},
    ]
    methods = [
        "tasks.task.get",
        "tasks.task.add",
        "tasks.task.update",
        "tasks.task.list",
        "tasks.task.start",
        "task.commentitem.add",
        "task.commentitem.get",
        "task.commentitem.getlist",
        "batch",
        "user.get",
    ]
    for method in methods:
        for payload in payloads:
            response = await emu.call(method, payload)
            assert response.status_code < 500, (method, payload, response.text)
            assert response.headers["content-type"].startswith("application/json")


async def test_query_string_and_body_are_merged(emu: Emulator) -> None:
    await emu.add_task(TITLE="merged")
    response = await emu.client.post(f"{REST}/tasks.task.get?taskId=1", json={"select": ["TITLE"]})
    task = response.json()["result"]["task"]
    assert (task["id"], task["title"]) == ("1", "merged")


async def test_multipart_form_body(emu: Emulator) -> None:
    response = await emu.client.post(
        f"{REST}/tasks.task.add",
        files={"fields[TITLE]": (None, "multi"), "fields[RESPONSIBLE_ID]": (None, "2")},
    )
    assert response.status_code == 200, response.text
    assert response.json()["result"]["task"]["title"] == "multi"
