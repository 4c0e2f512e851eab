from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from b24mw.emulator.app import create_app
from b24mw.emulator.config import EmulatorConfig
from b24mw.emulator.state.store import StateFileError

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


LONE = b'"\\ud800 broken"'


async def test_unpaired_surrogate_is_refused_and_the_portal_keeps_working(
    make_emulator: EmulatorFactory, tmp_path: Path
) -> None:
    path = tmp_path / "portal.json"
    emu = await make_emulator(state_file=path)
    await emu.add_task()
    json_headers = {"Content-Type": "application/json"}
    person = await emu.client.post(
        "/_emulator/person/tasks/1/comments",
        content=b'{"text": ' + LONE + b"}",
        headers=json_headers,
    )
    assert person.status_code == 400
    assert person.json()["error"] == "bad_request"
    rest = await emu.call(
        "task.commentitem.add",
        content=b'{"TASKID": 1, "FIELDS": {"POST_MESSAGE": ' + LONE + b"}}",
        headers=json_headers,
    )
    assert rest.status_code == 400
    assert rest.json()["error"] == "INVALID_REQUEST"
    title = await emu.call(
        "tasks.task.add",
        content=b'{"fields": {"TITLE": ' + LONE + b', "RESPONSIBLE_ID": 7}}',
        headers=json_headers,
    )
    assert title.status_code == 400
    # Every route still answers, changes are still saved, nothing was stored.
    assert (await emu.client.get("/_emulator/health")).status_code == 200
    await emu.ok("task.commentitem.add", {"TASKID": 1, "FIELDS": {"POST_MESSAGE": "fine"}})
    state = (await emu.client.get("/_emulator/tasks/1")).json()
    assert [c["text"] for c in state["comments"]] == ["fine"]
    reloaded = await make_emulator(state_file=path)
    assert len(reloaded.portal.store.comments) == 1


async def test_reads_do_not_rewrite_the_state_file(
    make_emulator: EmulatorFactory, tmp_path: Path
) -> None:
    path = tmp_path / "portal.json"
    emu = await make_emulator(state_file=path)
    await emu.add_task()
    written = path.stat()
    for url in ("/_emulator/health", "/_emulator/tasks", "/_emulator/tasks/1", "/_emulator/calls"):
        assert (await emu.client.get(url)).status_code == 200
    await emu.ok("tasks.task.get", {"taskId": 1})
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)


async def test_a_state_file_that_cannot_be_written_fails_no_request(
    make_emulator: EmulatorFactory, tmp_path: Path
) -> None:
    folder = tmp_path / "state"
    emu = await make_emulator(state_file=folder / "portal.json")
    await emu.add_task()
    shutil.rmtree(folder)
    folder.write_text("a file where the folder was")  # every save now fails
    await emu.ok("task.commentitem.add", {"TASKID": 1, "FIELDS": {"POST_MESSAGE": "kept"}})
    person = await emu.client.post("/_emulator/person/tasks/1/comments", json={"text": "too"})
    assert person.status_code == 201
    assert (await emu.client.get("/_emulator/health")).status_code == 200
    folder.unlink()  # the disk is back: the next change saves everything
    await emu.ok("task.commentitem.add", {"TASKID": 1, "FIELDS": {"POST_MESSAGE": "last"}})
    saved = json.loads((folder / "portal.json").read_text())
    assert [c["message"] for c in saved["comments"]] == ["kept", "too", "last"]
