"""The status planner (outbox/task_status.py): the route from any status to
any goal, checked against the portal's own rules (the emulator's model of
the tasks module), and what each answer means for the job."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from b24mw.bitrix24.errors import classify
from b24mw.emulator.rest.tasks import access
from b24mw.emulator.state.store import Task
from b24mw.outbox import task_status
from b24mw.outbox.task_status import GOALS, Step, route

STATUSES = range(1, 8)


def _task(status: int, **fields: Any) -> Task:
    values: dict[str, Any] = {
        "id": 5,
        "title": "t",
        "responsible_id": 101,
        "created_by": 2,
        "created_date": 0.0,
        "changed_date": 0.0,
        "changed_by": 2,
        "status": status,
    }
    values.update(fields)
    return Task(**values)


def _walk(task: Task, actor: access.Actor, goal: frozenset[int]) -> list[str]:
    """Follow the planner as the lane does — re-planning after every step from
    what the portal allows this actor — and apply each action by the portal's
    rules; returns the actions taken."""
    taken: list[str] = []
    for _ in range(6):
        path = route(task.status, goal, access.allowed_actions(task, actor))
        assert path is not None, f"no route from {task.status} to {goal}"
        if not path:
            return taken
        action = path[0]
        assert access.may(action, task, actor), f"{action} from {task.status} is refused"
        task.status = access.target(action, task, actor)
        taken.append(action)
    raise AssertionError("no end")


@pytest.mark.parametrize("method", sorted(GOALS))
@pytest.mark.parametrize("status", STATUSES)
def test_an_administrator_reaches_every_goal_from_every_status(method: str, status: int) -> None:
    goal = GOALS[method]
    task = _task(status)
    taken = _walk(task, access.Actor(1, admin=True), goal)
    assert task.status in goal
    assert len(taken) <= 3


@pytest.mark.parametrize("method", sorted(GOALS))
@pytest.mark.parametrize("status", STATUSES)
def test_the_creator_reaches_every_goal_without_admin_rights(method: str, status: int) -> None:
    """b24mw creates a delivery's task itself: as its creator it needs no admin."""
    goal = GOALS[method]
    task = _task(status, created_by=1, task_control=True)
    _walk(task, access.Actor(1), goal)
    assert task.status in goal


def test_routes_are_the_shortest_and_prefer_the_plain_moves() -> None:
    assert route(3, GOALS["tasks.task.defer"], None) == ["pause", "defer"]
    assert route(6, GOALS["tasks.task.start"], None) == ["renew", "start"]
    assert route(5, GOALS["tasks.task.start"], None) == ["renew", "start"]
    assert route(3, GOALS["tasks.task.renew"], None) == ["pause"]
    assert route(2, GOALS["tasks.task.renew"], None) == []
    assert route(4, GOALS["tasks.task.complete"], None) == []  # awaits the creator's review
    assert route(6, GOALS["tasks.task.complete"], None) == ["complete"]
    # Awaiting control: renew (the responsible) if allowed, else disapprove (admin).
    assert route(4, GOALS["tasks.task.start"], {"renew": True}) == ["renew", "start"]
    assert route(4, GOALS["tasks.task.start"], {"renew": False}) == ["disapprove", "start"]


def test_no_route_when_the_portal_allows_no_first_step() -> None:
    assert route(2, GOALS["tasks.task.start"], {"start": False, "defer": True}) is None
    nothing = dict.fromkeys(access.ACTIONS, False)
    assert route(3, GOALS["tasks.task.defer"], nothing) is None


@dataclass
class Job:
    payload: dict[str, Any]
    outcome_unknown: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _job(method: str = "tasks.task.defer", **plan: Any) -> Job:
    payload: dict[str, Any] = {"method": method, "params": {"taskId": 5}}
    if plan:
        payload["status_plan"] = plan
    return Job(payload)


READ = Step("tasks.task.get", {"taskId": 5})


def test_a_read_of_a_task_in_the_goal_is_done_with_nothing_sent() -> None:
    verdict = task_status.judge(_job(), READ, {"task": {"id": "5", "status": "6"}})
    assert (verdict.kind, verdict.result) == ("done", {"task": {"id": "5", "status": "6"}})


def test_a_read_plans_the_first_action_and_a_write_answer_plans_the_next() -> None:
    job = _job()
    first = task_status.judge(job, READ, {"task": {"id": "5", "status": "3"}})
    assert (first.kind, first.result["send"]) == ("continue", "pause")
    task_status.keep(job, first.result)
    step = task_status.next_step(job)
    assert (step.method, step.params) == ("tasks.task.pause", {"taskId": 5})
    second = task_status.judge(job, step, {"task": {"id": "5", "status": "2"}})
    assert second.result["send"] == "defer"


def test_after_a_lost_answer_the_next_step_is_a_read() -> None:
    job = _job(send="pause")
    job.outcome_unknown = True
    assert task_status.next_step(job).is_read


def test_a_task_not_visible_is_dead_saying_why() -> None:
    verdict = task_status.judge(_job(), READ, [])
    assert verdict.kind == "dead"
    assert "not visible to the integration user" in verdict.reason
    assert "lack of rights" in verdict.reason


def test_a_task_the_user_may_not_move_is_dead_for_lack_of_rights() -> None:
    forbidden = {"status": "2", "action": dict.fromkeys(access.ACTIONS, False)}
    verdict = task_status.judge(_job("tasks.task.start"), READ, {"task": forbidden})
    assert verdict.kind == "dead"
    assert verdict.reason.startswith("refused for lack of rights")
    assert "2 (pending)" in verdict.reason


def test_refusals_are_replanned_then_dead_for_lack_of_rights() -> None:
    job = _job(send="defer")
    step = task_status.next_step(job)
    error = classify("1048582", "Action on the task is not allowed", http_status=400)
    assert task_status.is_refusal(error)
    assert task_status.is_refusal(classify("0", "Action on the task is not allowed"))
    assert not task_status.is_refusal(classify("0", "wrong task id"))
    for count in range(1, task_status.MAX_REFUSALS):
        verdict = task_status.refused(job, step, error)
        assert verdict.kind == "continue"
        assert verdict.result == {"refusals": count}
        task_status.keep(job, verdict.result)
        assert task_status.next_step(job).is_read
        task_status.keep(job, {**verdict.result, "send": "defer"})
    last = task_status.refused(job, step, error)
    assert last.kind == "dead"
    assert last.reason.startswith("refused for lack of rights")
