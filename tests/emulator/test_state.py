from __future__ import annotations

import json
from pathlib import Path

import pytest

from b24mw.emulator import EmulatorConfig, create_app
from b24mw.emulator.state import StateFileError

from .conftest import EmulatorFactory


async def test_state_file_round_trip(make_emulator: EmulatorFactory, tmp_path: Path) -> None:
    path = tmp_path / "state" / "portal.json"
    first = await make_emulator(state_file=path)
    await first.add_task(TAGS=["instant_order"], UF_CRM_TASK=["D_1"])
    await first.ok("task.commentitem.add", {"TASKID": 1, "FIELDS": {"POST_MESSAGE": "kept"}})
    first.portal.apply_settings({"task_card": "new"})
    await first.client.post("/_emulator/person/tasks/1/comments", json={"text": "chat"})
    assert json.loads(path.read_text())["version"] == 1
    assert not list(path.parent.glob(".*.tmp"))

    second = await make_emulator(state_file=path)
    state = (await second.client.get("/_emulator/tasks/1")).json()
    assert state["tags"] == ["instant_order"]
    assert state["extra"] == {"UF_CRM_TASK": ["D_1"]}
    # The classic comment, and the message of the chat the task got on the new card.
    assert [c["text"] for c in state["comments"]] == ["kept", "chat"]
    assert state["chat_id"] == 1001
    listed = await second.ok("tasks.task.list", {"select": ["ID", "TAGS"]})
    assert listed["result"]["tasks"][0]["tags"] == {"1": {"id": 1, "title": "instant_order"}}
    assert (await second.add_task())["id"] == "2"
    next_comment = await second.ok(
        "task.commentitem.add", {"TASKID": 2, "FIELDS": {"POST_MESSAGE": "new"}}
    )
    assert next_comment["result"] == 2


async def test_person_changes_are_persisted_too(
    make_emulator: EmulatorFactory, tmp_path: Path
) -> None:
    path = tmp_path / "portal.json"
    emu = await make_emulator(state_file=path)
    await emu.client.post("/_emulator/person/tasks", json={"title": "p", "responsible_id": 2})
    assert json.loads(path.read_text())["tasks"][0]["title"] == "p"


def test_a_corrupt_state_file_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "portal.json"
    path.write_text("{not json")
    with pytest.raises(StateFileError):
        create_app(EmulatorConfig(state_file=path))
