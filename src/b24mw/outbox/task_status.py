"""Bringing a Bitrix24 task to a status, whatever status it is in now.

Bitrix24 refuses a status action the task's current status does not allow
(``tasks.task.defer`` of a task in progress, ``renew`` of a pending one) with
400 "Action on the task is not allowed", and a person may change the status
at any moment (complete the task before the courier does, defer it, start
it again).  So a status job names the method whose *end state* it wants —
``tasks.task.defer``: the task deferred — and the lane plans the calls from
the task's current status, one round at a time:

1. read the task (``tasks.task.get``: its status and the ``action`` block,
   what the integration user may do to it now);
2. already in the wanted status: done, nothing sent;
3. otherwise send the first action of the shortest route there
   (``pause`` then ``defer`` for a task in progress, ``renew`` then
   ``start`` for a deferred one...); each status method answers with the
   task, so the next action is planned from that answer without another
   read;
4. an action refused anyway (a person changed the status between our read
   and our call) is planned again from a fresh read, a few times at most.

A write whose answer was lost needs no lookup of its own: the next attempt
starts with the read, which shows whether it happened.

Refusals for want of rights end in the DLQ with a reason that says so
(`rights_refusal`), never with a bare "not allowed".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from b24mw.bitrix24.errors import CallError

TASK_GET = "tasks.task.get"
READ_SELECT = ["ID", "STATUS", "CREATED_BY", "RESPONSIBLE_ID"]
# A status action refused this many times in a row (each time from a fresh
# read that said it was allowed) is not a race any more: the DLQ, with why.
MAX_REFUSALS = 3
STATUS_NAMES = {
    1: "new",
    2: "pending",
    3: "in progress",
    4: "awaiting control",
    5: "completed",
    6: "deferred",
    7: "declined",
}

# The statuses a job for each method wants the task in.  ``complete`` accepts
# 4: under task control a completion by anyone but the creator awaits the
# creator's review, which is the creator's to give, not ours.
GOALS: Mapping[str, frozenset[int]] = {
    "tasks.task.start": frozenset({3}),
    "tasks.task.pause": frozenset({1, 2}),
    "tasks.task.defer": frozenset({6}),
    "tasks.task.complete": frozenset({4, 5}),
    "tasks.task.renew": frozenset({1, 2}),
    "tasks.task.approve": frozenset({5}),
    "tasks.task.disapprove": frozenset({1, 2}),
}
# The portal's transition table (the tasks module's access rules), in the
# order a route prefers them: action -> (statuses it starts from, status it
# leads to).  Who may take each step is the portal's business: the ``action``
# block of the task says it for the first step; a later step refused is
# planned again from a fresh read.
MOVES: tuple[tuple[str, frozenset[int], int], ...] = (
    ("start", frozenset({1, 2}), 3),
    ("pause", frozenset({3}), 2),
    ("defer", frozenset({1, 2}), 6),
    ("renew", frozenset({4, 5, 6}), 2),
    ("disapprove", frozenset({4}), 2),
    ("approve", frozenset({4}), 5),
    ("complete", frozenset({1, 2, 3, 4, 6, 7}), 5),
)


def goal_of(method: str) -> frozenset[int] | None:
    return GOALS.get(method.lower())


def route(status: int, goal: frozenset[int], allowed: Mapping[str, Any] | None) -> list[str] | None:
    """The shortest list of actions from ``status`` into ``goal``; ``[]`` when
    already there, ``None`` when no route starts with an action ``allowed``
    permits (``allowed``: the task's ``action`` block; ``None``: unknown, any)."""
    if status in goal:
        return []
    first = {
        name
        for name, starts, _ in MOVES
        if status in starts and (allowed is None or allowed.get(name, True) is not False)
    }
    queue: deque[tuple[int, list[str]]] = deque([(status, [])])
    seen = {status}
    while queue:
        current, path = queue.popleft()
        for name, starts, lands in MOVES:
            if current not in starts or (not path and name not in first):
                continue
            if lands in goal:
                return [*path, name]
            if lands not in seen:
                seen.add(lands)
                queue.append((lands, [*path, name]))
    return None


class Job(Protocol):
    payload: Any
    outcome_unknown: bool


@dataclass(frozen=True, slots=True)
class Step:
    """What to send this round: the read, or one status action."""

    method: str
    params: dict[str, Any]
    action: str | None = None  # None: the read

    @property
    def is_read(self) -> bool:
        return self.action is None


class VerdictKind(StrEnum):
    DONE = "done"  # the task holds the job's status
    CONTINUE = "continue"  # send the next step at once
    DEAD = "dead"  # the status cannot be reached (refused, no route)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the answer to a step means for the job."""

    kind: VerdictKind
    result: Any = None  # done: the task; continue: the next progress
    reason: str = ""  # dead: why, for the DLQ


def _task_id(job: Job) -> Any:
    params = job.payload.get("params") if isinstance(job.payload, dict) else None
    if not isinstance(params, dict):
        return None
    for key in ("taskId", "TASKID", "taskid", "TASK_ID"):
        if key in params:
            return params[key]
    return None


def progress(job: Job) -> dict[str, Any]:
    value = job.payload.get("status_plan") if isinstance(job.payload, dict) else None
    return value if isinstance(value, dict) else {}


def keep(job: Job, step: dict[str, Any] | None) -> None:
    """Store where the plan stands (``None``: forget it).  The payload is
    reassigned: SQLAlchemy does not see in-place JSON changes."""
    payload = dict(job.payload) if isinstance(job.payload, dict) else {}
    if step is None and "status_plan" not in payload:
        return
    if step is None:
        payload.pop("status_plan", None)
    else:
        payload["status_plan"] = step
    job.payload = payload


def next_step(job: Job) -> Step:
    task_id = _task_id(job)
    planned = progress(job)
    action = planned.get("send")
    # After a send whose answer was lost, only a read tells where the task is.
    if isinstance(action, str) and not job.outcome_unknown:
        return Step(f"tasks.task.{action}", {"taskId": task_id}, action)
    return Step(TASK_GET, {"taskId": task_id, "select": READ_SELECT})


def _status(task: dict[str, Any]) -> int | None:
    raw = task.get("status", task.get("realStatus"))
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    return int(raw) if isinstance(raw, str) and raw.isdigit() else None


def _name(status: int) -> str:
    return f"{status} ({STATUS_NAMES.get(status, 'unknown')})"


def judge(job: Job, step: Step, result: Any) -> Verdict:
    """A successful answer to ``step``: the job is done, or the next action."""
    method = str(job.payload.get("method", ""))
    goal = goal_of(method) or frozenset()
    task_id = _task_id(job)
    task = result.get("task") if isinstance(result, dict) else None
    if not isinstance(task, dict):
        if step.is_read:
            return Verdict(
                VerdictKind.DEAD,
                reason="refused for lack of rights, or the task is gone: task "
                f"{task_id} is not visible to the integration user (deleted, or the user is "
                "not a Bitrix24 administrator and has no role on it)",
            )
        return Verdict(VerdictKind.CONTINUE, {"refusals": progress(job).get("refusals", 0)})
    status = _status(task)
    if status is None:
        return Verdict(VerdictKind.CONTINUE, {"refusals": progress(job).get("refusals", 0)})
    if status in goal:
        return Verdict(VerdictKind.DONE, {"task": task})
    allowed = task.get("action") if isinstance(task.get("action"), dict) else None
    path = route(status, goal, allowed)
    if not path:
        wanted = " or ".join(_name(s) for s in sorted(goal))
        return Verdict(
            VerdictKind.DEAD,
            reason=f"refused for lack of rights: the integration user may not move task "
            f"{task_id} from status {_name(status)} to {wanted} (Bitrix24 allows none of the "
            "actions that lead there to this user); make the integration user a Bitrix24 "
            "administrator or a participant of the task, then replay the job",
        )
    return Verdict(
        VerdictKind.CONTINUE,
        {"send": path[0], "from": status, "refusals": progress(job).get("refusals", 0)},
    )


def is_refusal(error: CallError) -> bool:
    """'Action on the task is not allowed' (code 0 or 1048582 by method page,
    ``ERROR_CORE`` with the code inside for the older methods)."""
    text = f"{error.code} {error.description}".lower()
    return "1048582" in text or "action on the task is not allowed" in text


def refused(job: Job, step: Step, error: CallError) -> Verdict:
    """A status action refused although the last read allowed it: a person
    changed the status in between (read again and re-plan), or, when it keeps
    happening, the integration user lacks the rights."""
    count = int(progress(job).get("refusals", 0)) + 1
    if count < MAX_REFUSALS:
        return Verdict(VerdictKind.CONTINUE, {"refusals": count})
    return Verdict(
        VerdictKind.DEAD,
        reason=f"refused for lack of rights: Bitrix24 refused {step.method} on task "
        f"{_task_id(job)} {count} times although its status allowed the action "
        f"({error.text}); the integration user is probably not a Bitrix24 administrator "
        "and has no role on the task",
    )
