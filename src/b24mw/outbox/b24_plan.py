"""What a Bitrix24 job sends this round, and what the answer means for it.

``plan`` turns a claimed job into this round's call: the job's own method,
a lookup after a lost answer (``outbox.verify``), the next step of a status
job (``outbox.task_status``), its result hook alone (a replay), or nothing
(an invalid payload).  ``decide`` turns the answer into the job's fate:
done, retried, dead, looked up again, or the next step at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from b24mw.bitrix24.client import CommandResult
from b24mw.bitrix24.errors import CallError, Outcome, rights_hint
from b24mw.models.ops import OutboxJob
from b24mw.outbox import task_status, verify
from b24mw.outbox.hooks import get_hook

_METHOD = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")


class Action(StrEnum):
    """What a job's round does."""

    SEND = "send"  # the job's own call
    VERIFY = "verify"  # a lookup: did a send whose answer was lost take effect?
    STATUS = "status"  # this round's step of a status job (a read or an action)
    HOOK = "hook"  # no call: the result hook alone (a replay after the hook failed)
    INVALID = "invalid"  # no call: the payload cannot be sent; the job dies


class Fate(StrEnum):
    """What an answer means for the job."""

    DONE = "done"
    RETRY = "retry"
    DEAD = "dead"
    RECHECK = "recheck"  # the lookup found nothing: send again, as the same attempt
    CONTINUE = "continue"  # the next step at once (status jobs, paged lookups)


@dataclass(slots=True)
class Plan:
    job: OutboxJob
    action: Action
    method: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    problem: str = ""
    # verify: what recognises the write's effect in the lookup's answer.
    check: verify.Check | None = None
    # status: this round's step of bringing the task to the job's status.
    status_step: task_status.Step | None = None

    @property
    def command_name(self) -> str:
        """The job's command in a ``batch`` call (``cmd`` keys are names, not ids)."""
        return f"j{self.job.id}"

    @property
    def on_wire(self) -> bool:
        return self.action in (Action.SEND, Action.VERIFY, Action.STATUS)

    @property
    def writes(self) -> bool:
        """This round's call may change something in Bitrix24."""
        if self.action is Action.STATUS:
            return self.status_step is not None and not self.status_step.is_read
        return self.action is Action.SEND


@dataclass(slots=True)
class Decision:
    action: Fate
    result: Any = None
    error: CallError | None = None
    message: str = ""
    not_before: float | None = None
    unknown: bool = False
    exchange: CommandResult | None = None
    # The code the DLQ entry carries when there is no Bitrix24 error to name.
    code: str | None = None
    # continue: this round's read settled whether an earlier send happened.
    settled: bool = False


def plan(job: OutboxJob) -> Plan:
    payload = job.payload
    if not isinstance(payload, dict):
        return Plan(job, Action.INVALID, problem="payload is not a JSON object")
    method, params = payload.get("method"), payload.get("params", {})
    if not isinstance(method, str) or not _METHOD.match(method):
        return Plan(job, Action.INVALID, problem=f"'method' is not a Bitrix24 method: {method!r}")
    if method.lower() == "batch":
        return Plan(job, Action.INVALID, problem="a job cannot be a batch (batches are built here)")
    if not isinstance(params, dict):
        return Plan(job, Action.INVALID, problem="'params' must be a JSON object")
    hook = payload.get("on_result")
    if hook is not None:
        try:
            get_hook(str(hook))
        except LookupError as exc:
            return Plan(job, Action.INVALID, problem=str(exc))
    if job.result is not None and hook:
        # Replayed after its hook failed: the call itself already succeeded.
        return Plan(job, Action.HOOK, method, params)
    if task_status.goal_of(method) is not None:
        # A status job: planned from the task's current status, step by step.
        step = task_status.next_step(job)
        return Plan(job, Action.STATUS, step.method, step.params, status_step=step)
    if job.outcome_unknown:
        # The last send may have run: look for its effect before sending again.
        check = verify.check_for(method)
        lookup = check.lookup(job) if check is not None else None
        if check is not None and lookup is not None:
            return Plan(job, Action.VERIFY, lookup.method, lookup.params, check=check)
    return Plan(job, Action.SEND, method, params)


def _status_decision(step: Plan, item: CommandResult) -> Decision | None:
    """A status job's step answered: done, the next step, or the DLQ with why;
    ``None`` for an error the common rules below handle."""
    assert step.status_step is not None
    error = item.error
    if error is None:
        verdict = task_status.judge(step.job, step.status_step, item.result)
    elif (
        not step.status_step.is_read
        and error.outcome is Outcome.PERMANENT
        and task_status.is_refusal(error)
    ):
        verdict = task_status.refused(step.job, step.status_step, error)
    else:
        return None
    if verdict.kind is task_status.VerdictKind.DONE:
        return Decision(Fate.DONE, result=verdict.result, exchange=item)
    if verdict.kind is task_status.VerdictKind.CONTINUE:
        return Decision(
            Fate.CONTINUE, result=verdict.result, exchange=item, settled=step.status_step.is_read
        )
    return Decision(
        Fate.DEAD, error=error, message=verdict.reason, exchange=item, code="TASK_STATUS_REFUSED"
    )


def decide(step: Plan, item: CommandResult) -> Decision:
    if step.action is Action.STATUS:
        planned = _status_decision(step, item)
        if planned is not None:
            return planned
    error = item.error
    if error is None:
        if step.action is Action.VERIFY and step.check is not None:
            found = step.check.found(step.job, item.result)
            if isinstance(found, verify.Continue):
                return Decision(Fate.CONTINUE, result=found.progress, exchange=item)
            if found is None:
                return Decision(Fate.RECHECK, exchange=item)
            return Decision(Fate.DONE, result=found, exchange=item)
        return Decision(Fate.DONE, result=item.result, exchange=item)
    if error.outcome is Outcome.PERMANENT:
        prefix = "checking for an earlier delivery failed: " if step.action is Action.VERIFY else ""
        hint = rights_hint(error, step.method)
        message = f"{hint} [{error.text}]" if hint else error.text
        return Decision(Fate.DEAD, error=error, message=prefix + message, exchange=item)
    not_before = error.reset_at if error.outcome is Outcome.OPERATING_LIMITED else None
    return Decision(
        Fate.RETRY,
        error=error,
        message=error.text,
        not_before=not_before,
        unknown=error.may_have_run and step.writes,
        exchange=item,
    )


def payload_method(job: OutboxJob) -> str:
    method = job.payload.get("method") if isinstance(job.payload, dict) else None
    return method if isinstance(method, str) else ""


def wire_method(job: OutboxJob) -> str | None:
    """The method this job's next round sends (a status job's read or action)."""
    method = payload_method(job)
    if task_status.goal_of(method) is not None:
        return task_status.next_step(job).method
    return method or None
