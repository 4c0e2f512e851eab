"""Who may see a task and change its status, from which status, and to what.

The rules are the `tasks` module's access rules (`Bitrix\\Tasks\\Access\\Rule\\
Task{Start,Pause,Defer,Complete,Renew,Approve,Disapprove,Read,Edit}Rule`) and
`CTaskItem::proceedAction` (the status each action leads to), as in the
module source; the error each method answers is its page's in the official
REST docs (`api-reference/tasks/status/*.md`, `tasks-task-approve.md`,
`tasks-task-disapprove.md`).

Not modelled, so refused here (the stricter reading): rights that come from a
workgroup's permissions, from being the manager of a member (subordinates),
or from role permissions such as "edit tasks of my department".
"""

from __future__ import annotations

from dataclasses import dataclass

from b24mw.emulator.state.store import Task

NEW, PENDING, IN_PROGRESS, AWAITING_CONTROL, COMPLETED, DEFERRED, DECLINED = range(1, 8)
ACTIONS = ("start", "pause", "complete", "defer", "renew", "approve", "disapprove")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a user id, and whether that user is a portal administrator."""

    user_id: int
    admin: bool = False


def is_creator(task: Task, who: Actor) -> bool:
    return task.created_by == who.user_id


def is_responsible(task: Task, who: Actor) -> bool:
    return task.responsible_id == who.user_id


def is_accomplice(task: Task, who: Actor) -> bool:
    return who.user_id in task.accomplices


def is_auditor(task: Task, who: Actor) -> bool:
    return who.user_id in task.auditors


def works_on(task: Task, who: Actor) -> bool:
    """Creator, responsible or accomplice: the roles the status rules let act
    (auditors only watch)."""
    return is_creator(task, who) or is_responsible(task, who) or is_accomplice(task, who)


def can_read(task: Task, who: Actor) -> bool:
    """TaskReadRule: administrators and every member, auditors included."""
    return who.admin or works_on(task, who) or is_auditor(task, who)


def can_edit(task: Task, who: Actor) -> bool:
    """TaskEditRule without role permissions: administrators, and the creator
    while the task is not completed."""
    return who.admin or (is_creator(task, who) and task.status != COMPLETED)


def may(action: str, task: Task, who: Actor) -> bool:
    """The module's rule for ``action`` on ``task`` by ``who``."""
    if not can_read(task, who):
        return False
    status = task.status
    if action in ("start", "defer"):
        return status in (NEW, PENDING) and (who.admin or works_on(task, who))
    if action == "pause":
        return status == IN_PROGRESS and (who.admin or works_on(task, who))
    if action == "complete":
        if status == COMPLETED:
            return False
        if who.admin:
            return True
        # Awaiting control: only the creator may close it.
        if status == AWAITING_CONTROL:
            return is_creator(task, who)
        return works_on(task, who)
    if action == "renew":
        if status == AWAITING_CONTROL:
            # The one who sent it for review takes it back: not its creator,
            # nor an administrator without a role.
            return not is_creator(task, who) and (
                is_responsible(task, who) or is_accomplice(task, who)
            )
        return status in (COMPLETED, DEFERRED) and (who.admin or works_on(task, who))
    if action in ("approve", "disapprove"):
        return status == AWAITING_CONTROL and (who.admin or is_creator(task, who))
    return False


def target(action: str, task: Task, who: Actor) -> int:
    """The status ``action`` by ``who`` puts ``task`` in."""
    if action == "complete":
        closes = (
            (who.admin and task.status == AWAITING_CONTROL)
            or task.created_by == task.responsible_id
            or is_creator(task, who)
            or not task.task_control
        )
        # Under task control anyone else's completion awaits the creator.
        return COMPLETED if closes else AWAITING_CONTROL
    return {
        "start": IN_PROGRESS,
        "pause": PENDING,
        "defer": DEFERRED,
        "renew": PENDING,
        "approve": COMPLETED,
        "disapprove": PENDING,
    }[action]


def allowed_actions(task: Task, who: Actor) -> dict[str, bool]:
    """What ``tasks.task.get`` reports under ``action`` for the caller."""
    return {action: may(action, task, who) for action in ACTIONS}


def refusal_reason(action: str, task: Task, who: Actor) -> str:
    """Why ``action`` is refused, in words (the portal says only "not allowed")."""
    if not can_read(task, who):
        return "the user cannot see the task"
    if may(action, task, who):
        return ""
    probe = Actor(who.user_id, admin=True)
    if may(action, task, probe) and not who.admin:
        return f"the user has no role on the task that allows {action}"
    return f"cannot {action} a task in status {task.status}"
