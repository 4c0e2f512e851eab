from __future__ import annotations

from typing import Any

from .conftest import Emulator


async def test_batch_runs_commands_in_order_with_references(emu: Emulator) -> None:
    data = await emu.ok(
        "batch",
        {
            "halt": 0,
            "cmd": {
                "task": "tasks.task.add?fields[TITLE]=From%20batch&fields[RESPONSIBLE_ID]=3",
                "note": "task.commentitem.add?TASKID=$result[task][task][id]"
                "&FIELDS[POST_MESSAGE]=id%20$result[task][task][id]",
                "read": "tasks.task.get?taskId=$result[task][task][id]&select[]=TITLE",
            },
        },
    )
    result = data["result"]
    assert set(result) == {"result", "result_error", "result_total", "result_next", "result_time"}
    assert result["result"]["task"]["task"]["id"] == "1"
    assert result["result"]["note"] == 1
    read = result["result"]["read"]["task"]
    assert (read["id"], read["title"]) == ("1", "From batch")
    assert set(read) == {"id", "title", "action"}  # the caller's allowed actions, always
    assert result["result_error"] == []
    assert set(result["result_time"]) == {"task", "note", "read"}
    assert result["result_time"]["read"]["operating_reset_at"] > 0
    comments = (await emu.client.get("/_emulator/tasks/1")).json()["comments"]
    assert comments[0]["text"] == "id 1"
    assert "time" in data


async def test_failed_commands_do_not_fail_the_batch(emu: Emulator) -> None:
    response = await emu.call(
        "batch",
        {"cmd": {"a": "no.such.method", "b": "tasks.task.get?taskId=abc", "c": "user.current"}},
    )
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["result_error"] == {
        "a": {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"},
        "b": {"error": "0", "error_description": "wrong task id"},
    }
    assert set(result["result"]) == {"c"}


async def test_halt_stops_at_the_first_error(emu: Emulator) -> None:
    data = await emu.ok(
        "batch",
        {
            "halt": 1,
            "cmd": {
                "a": "user.current",
                "b": "tasks.task.update?taskId=99&fields[TITLE]=x",
                "c": "tasks.task.add?fields[TITLE]=never&fields[RESPONSIBLE_ID]=1",
            },
        },
    )
    assert set(data["result"]["result"]) == {"a"}
    assert set(data["result"]["result_error"]) == {"b"}
    assert emu.portal.store.tasks == {}


async def test_all_failed_batch_has_empty_arrays(emu: Emulator) -> None:
    data = await emu.ok("batch", {"cmd": {"a": "nope"}})
    result = data["result"]
    assert result["result"] == []
    assert result["result_total"] == []
    assert result["result_next"] == []
    assert result["result_time"] == []


async def test_total_and_next_per_command(emu: Emulator) -> None:
    for _ in range(55):
        await emu.add_task()
    data = await emu.ok(
        "batch", {"cmd": {"page": "tasks.task.list?select[]=ID", "one": "user.current"}}
    )
    assert data["result"]["result_total"] == {"page": 55}
    assert data["result"]["result_next"] == {"page": 50}


async def test_list_commands_come_back_as_lists(emu: Emulator) -> None:
    data = await emu.ok("batch", {"cmd": ["user.current", "user.current"]})
    assert isinstance(data["result"]["result"], list)
    assert len(data["result"]["result"]) == 2


async def test_more_than_fifty_commands_is_rejected(emu: Emulator) -> None:
    cmd = {f"k{i}": "user.current" for i in range(51)}
    response = await emu.call("batch", {"cmd": cmd})
    assert response.status_code == 400
    assert response.json()["error"] == "ERROR_BATCH_LENGTH_EXCEEDED"
    fifty = await emu.call("batch", {"cmd": dict(list(cmd.items())[:50])})
    assert fifty.status_code == 200


async def test_nested_batch_is_not_allowed(emu: Emulator) -> None:
    data = await emu.ok("batch", {"cmd": {"inner": "batch?cmd[a]=user.current"}})
    assert data["result"]["result_error"]["inner"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"


async def test_unresolvable_reference_stays_literal_and_fails(emu: Emulator) -> None:
    data = await emu.ok("batch", {"cmd": {"read": "tasks.task.get?taskId=$result[nope][id]"}})
    assert data["result"]["result_error"]["read"]["error"] == "0"
    call = (await emu.client.get("/_emulator/calls")).json()[-1]
    assert call["commands"][0]["args"] == {"taskId": "$result[nope][id]"}


async def test_batch_as_a_form_body(emu: Emulator) -> None:
    response = await emu.call(
        "batch",
        data={"halt": "0", "cmd[a]": "tasks.task.add?fields[TITLE]=f&fields[RESPONSIBLE_ID]=2"},
    )
    assert response.status_code == 200
    assert response.json()["result"]["result"]["a"]["task"]["title"] == "f"


async def test_calls_log_records_each_command(emu: Emulator) -> None:
    await emu.ok("batch", {"cmd": {"a": "user.current", "b": "nope?x=1"}})
    calls: list[dict[str, Any]] = (await emu.client.get("/_emulator/calls")).json()
    assert calls[-1]["method"] == "batch"
    assert calls[-1]["commands"] == [
        {"key": "a", "method": "user.current", "args": {}, "error": None},
        {"key": "b", "method": "nope", "args": {"x": "1"}, "error": "ERROR_METHOD_NOT_FOUND"},
    ]


async def test_cmd_of_the_wrong_type_is_a_400(emu: Emulator) -> None:
    response = await emu.call("batch", {"cmd": "user.current"})
    assert response.status_code == 400
    assert response.json()["error"] == "INVALID_REQUEST"
