"""The portal's status rules and permissions (emulator/access.py): what a
portal refuses, the emulator refuses — for REST and for people alike."""

from __future__ import annotations

from typing import Any

import pytest

from b24mw.emulator.rest.tasks import access
from b24mw.emulator.state.store import Task

from .conftest import Emulator, EmulatorFactory

REFUSED = "Action on the task is not allowed"
# The statuses each action may start from, for a user who may act at all.
FROM = {
    "start": {1, 2},
    "pause": {3},
    "defer": {1, 2},
    "complete": {1, 2, 3, 4, 6, 7},
    "renew": {5, 6},
    "approve": {4},
    "disapprove": {4},
}


def _task(status: int, **fields: Any) -> Task:
    values: dict[str, Any] = {
        "id": 1,
        "title": "t",
        "responsible_id": 17,
        "created_by": 2,
        "created_date": 0.0,
        "changed_date": 0.0,
        "changed_by": 2,
        "status": status,
    }
    values.update(fields)
    return Task(**values)


@pytest.mark.parametrize("action", access.ACTIONS)
@pytest.mark.parametrize("status", range(1, 8))
def test_an_administrator_acts_only_from_the_statuses_the_module_allows(
    action: str, status: int
) -> None:
    admin = access.Actor(1, admin=True)
    assert access.may(action, _task(status), admin) == (status in FROM[action])


def test_roles_decide_who_may_change_the_status() -> None:
    task = _task(2, accomplices=[30], auditors=[40])
    for user_id in (2, 17, 30):  # creator, responsible, accomplice
        assert access.may("start", task, access.Actor(user_id))
    assert not access.may("start", task, access.Actor(40))  # an auditor only watches
    assert access.can_read(task, access.Actor(40))
    assert not access.may("start", task, access.Actor(99))  # no role, no admin
    assert not access.can_read(task, access.Actor(99))


def test_under_control_only_the_creator_closes_and_the_responsible_takes_it_back() -> None:
    task = _task(3, task_control=True)
    responsible, creator = access.Actor(17), access.Actor(2)
    assert access.target("complete", task, responsible) == 4
    awaiting = _task(4, task_control=True)
    assert not access.may("complete", awaiting, responsible)
    assert access.may("renew", awaiting, responsible)
    assert access.may("complete", awaiting, creator)
    assert not access.may("renew", awaiting, creator)
    assert access.target("complete", awaiting, creator) == 5
    admin = access.Actor(1, admin=True)
    assert access.target("complete", task, admin) == 4  # not the creator: awaits review
    assert access.target("complete", awaiting, admin) == 5
    assert not access.may("renew", awaiting, admin)


async def test_refusals_answer_as_each_methods_page_documents(emu: Emulator) -> None:
    task_id = (await emu.add_task())["id"]
    await emu.ok("tasks.task.start", {"taskId": task_id})
    expected = {"defer": "1048582", "start": "0", "renew": "1048582"}
    for action, code in expected.items():
        response = await emu.call(f"tasks.task.{action}", {"taskId": task_id})
        assert response.status_code == 400
        assert response.json() == {"error": code, "error_description": REFUSED}
    missing = await emu.call("tasks.task.pause", {"taskId": 404})
    assert missing.json() == {"error": "1048582", "error_description": REFUSED}


async def test_get_tells_the_caller_what_it_may_do(emu: Emulator) -> None:
    task_id = (await emu.add_task())["id"]
    data = await emu.ok("tasks.task.get", {"taskId": task_id, "select": ["ID", "STATUS"]})
    allowed = data["result"]["task"]["action"]
    assert {k for k, v in allowed.items() if v} == {"start", "defer", "complete"}


async def _person_task(emu: Emulator, **body: Any) -> int:
    response = await emu.client.post(
        "/_emulator/person/tasks",
        json={"title": "Street sale", "responsible_id": 17, "created_by": 2, **body},
    )
    assert response.status_code == 201, response.text
    task_id: int = response.json()["id"]
    return task_id


async def _person(emu: Emulator, task_id: int, action: str, actor: int) -> Any:
    return await emu.client.post(
        f"/_emulator/person/tasks/{task_id}/status", json={"action": action, "actor_id": actor}
    )


async def test_a_person_follows_the_same_rules(emu: Emulator) -> None:
    task_id = await _person_task(emu, auditors=[40])
    refused = await _person(emu, task_id, "pause", 17)
    assert refused.status_code == 409
    assert refused.json() == {
        "error": "action_not_allowed",
        "detail": "cannot pause a task in status 2",
    }
    watcher = await _person(emu, task_id, "start", 40)
    assert watcher.status_code == 409
    assert "no role" in watcher.json()["detail"]
    stranger = await _person(emu, task_id, "start", 99)
    assert stranger.json()["detail"] == "the user cannot see the task"
    # The courier completes the task before anyone else does.
    assert (await _person(emu, task_id, "start", 17)).json()["status"] == 3
    assert (await _person(emu, task_id, "complete", 17)).json()["status"] == 5


async def test_a_person_completing_a_task_under_control_sends_it_for_review(
    emu: Emulator,
) -> None:
    task_id = await _person_task(emu, task_control=True)
    done = await _person(emu, task_id, "complete", 17)
    assert done.json()["status"] == 4
    assert (await _person(emu, task_id, "complete", 17)).status_code == 409
    assert (await _person(emu, task_id, "approve", 2)).json()["status"] == 5


async def test_accomplices_auditors_and_control_are_task_fields(emu: Emulator) -> None:
    created = await emu.add_task(ACCOMPLICES=[30, "31"], AUDITORS=[40], TASK_CONTROL="Y")
    assert created["accomplices"] == ["30", "31"]
    assert created["auditors"] == ["40"]
    assert created["taskControl"] == "Y"
    updated = await emu.ok(
        "tasks.task.update",
        {"taskId": created["id"], "fields": {"AUDITORS": [], "TASK_CONTROL": "N"}},
    )
    assert updated["result"]["task"]["auditors"] == []
    assert updated["result"]["task"]["taskControl"] == "N"


async def test_a_non_admin_webhook_sees_and_moves_only_its_own_tasks(
    make_emulator: EmulatorFactory,
) -> None:
    emu = await make_emulator(rest_user_admin=False)
    others = await _person_task(emu)
    own = (await emu.add_task(RESPONSIBLE_ID=17))["id"]  # created by the webhook user
    hidden = await emu.ok("tasks.task.get", {"taskId": others})
    assert hidden["result"] == []
    listed = await emu.ok("tasks.task.list", {"select": ["ID"]})
    assert [t["id"] for t in listed["result"]["tasks"]] == [str(own)]
    refused = await emu.call("tasks.task.start", {"taskId": others})
    assert refused.json() == {"error": "0", "error_description": REFUSED}
    not_editable = await emu.call("tasks.task.update", {"taskId": others, "fields": {"TITLE": "x"}})
    assert not_editable.status_code == 400
    comment = await emu.call(
        "task.commentitem.add", {"TASKID": others, "FIELDS": {"POST_MESSAGE": "hi"}}
    )
    assert comment.status_code == 400
    assert (await emu.ok("tasks.task.start", {"taskId": own}))["result"]["task"]["status"] == "3"
    # An accomplice may act on someone else's task.
    await emu.client.patch(f"/_emulator/person/tasks/{others}", json={"accomplices": [1]})
    started = await emu.ok("tasks.task.start", {"taskId": others})
    assert started["result"]["task"]["status"] == "3"
    assert (await emu.ok("user.admin"))["result"] is False


async def test_the_admin_setting_changes_at_run_time(emu: Emulator) -> None:
    assert (await emu.ok("user.admin"))["result"] is True
    response = await emu.client.post("/_emulator/settings", json={"rest_user_admin": False})
    assert response.json()["rest_user_admin"] is False
    assert (await emu.ok("user.admin"))["result"] is False
    bad = await emu.client.post("/_emulator/settings", json={"rest_user_admin": "no"})
    assert bad.status_code == 400


async def test_scope_lists_what_the_webhook_was_granted(make_emulator: EmulatorFactory) -> None:
    emu = await make_emulator(webhook_scope="task,user")
    assert (await emu.ok("scope"))["result"] == ["task", "user"]
    full = (await emu.ok("scope", {"full": True}))["result"]
    assert {"task", "im", "crm", "imopenlines"} <= set(full)
    # `basic` methods need no scope of their own.
    assert (await emu.ok("user.admin"))["result"] is True
