"""The Bitrix24 lane: due ``b24.call`` jobs, packed up to 50 per ``batch`` request.

One round: claim (first job of each ordering key only, blocked methods set
aside) → reserve a slot from the shared limiter → one request → per-command
outcomes → one transaction that finishes every job, runs result hooks, writes
``integration_log`` and feeds the limiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.bitrix24 import metrics as b24_metrics
from b24mw.bitrix24.client import Bitrix24Client, CommandResult, Reply
from b24mw.bitrix24.errors import Outcome
from b24mw.bitrix24.gateway import log_b24
from b24mw.bitrix24.throttle import Feedback, SharedThrottle, learn
from b24mw.kit.db import Database
from b24mw.kit.request_context import current_request_id, set_request_id
from b24mw.kit.staging import savepoint
from b24mw.models.base import utcnow
from b24mw.models.enums import JobKind
from b24mw.models.ops import OutboxJob
from b24mw.outbox import metrics, states, task_status, verify
from b24mw.outbox.b24_plan import (
    Action,
    Decision,
    Fate,
    Plan,
    decide,
    payload_method,
    plan,
    wire_method,
)
from b24mw.outbox.hooks import get_failure_hook, get_hook
from b24mw.outbox.lane import Lane, epoch_to_dt, is_transient_db_error, log
from b24mw.outbox.repository import OutboxRepository
from b24mw.settings import Settings


class B24Lane(Lane):
    kinds = (JobKind.B24_CALL,)

    def __init__(
        self,
        settings: Settings,
        db: Database,
        worker_id: str,
        client: Bitrix24Client,
        throttle: SharedThrottle,
    ) -> None:
        super().__init__(settings, db, worker_id)
        self.client = client
        self.throttle = throttle
        self.batch_max = settings.b24_batch_max
        self.max_wait = settings.b24_max_wait_s
        self.settle_s = settings.outbox_late_apply_s

    async def due(self) -> bool:
        # Nothing is due while no call can be authorised (see ``round``).
        return await self.client.target.ready() and await super().due()

    async def round(self) -> int:
        if not await self.client.target.ready():
            # OAuth: not installed or refused.  The jobs wait, unclaimed, without
            # spending attempts, until the application is installed again.
            return 0
        hint = await self.throttle.wait_hint()
        if hint > self.max_wait:
            return 0  # the limiter is far off: leave the jobs for a later round
        if hint > 0:
            # Wait for the slot *before* claiming: jobs that arrive meanwhile
            # join this batch instead of waiting a whole slot for the next one.
            await asyncio.sleep(hint)
        if not await self.due():
            return 0
        jobs = await self._claim()
        if not jobs:
            return 0
        sent = False
        try:
            plans = [plan(job) for job in jobs]
            wire = [p for p in plans if p.on_wire]
            decisions: dict[int, Decision] = {}
            feedback = Feedback()
            reply: Reply | None = None
            if wire:
                reservation = await self.throttle.reserve(self.max_wait)
                if not reservation.granted:
                    b24_metrics.throttle_wait(reservation.wait_s)
                    await self.give_back(
                        [p.job for p in wire], until=epoch_to_dt(reservation.at), sent=False
                    )
                    plans = [p for p in plans if not p.on_wire]
                    wire = []
                elif reservation.wait_s > 0:
                    b24_metrics.throttle_wait(reservation.wait_s)
                    await asyncio.sleep(reservation.wait_s)
            if wire:
                sent = True
                reply, items = await self._send(wire)
                learn(feedback, reply, list(items.values()) if len(wire) > 1 else None)
                for step in wire:
                    decisions[step.job.id] = decide(step, items[step.command_name])
            for step in plans:
                if step.action is Action.INVALID:
                    decisions[step.job.id] = Decision(
                        Fate.DEAD, message=f"invalid job: {step.problem}"
                    )
                elif step.action is Action.HOOK:
                    decisions[step.job.id] = Decision(Fate.DONE, result=step.job.result)
            await self._complete(plans, decisions, feedback, reply)
            return len(decisions)
        except BaseException:
            # Shutdown, or the database failing mid-round: hand the jobs back now
            # rather than at lease expiry (if the database lets us).
            with contextlib.suppress(Exception):
                await asyncio.shield(self.give_back(jobs, until=utcnow(), sent=sent))
            raise

    async def _claim(self) -> list[OutboxJob]:
        claimed: list[OutboxJob] = []

        async def work(session: AsyncSession) -> None:
            claimed.clear()
            now = utcnow()
            blocked = await self.throttle.blocked_methods(session)
            for job in await OutboxRepository(session).claim(self.kinds, now, self.batch_max):
                method = wire_method(job)
                settled = self._settled_at(job)
                if settled is not None and settled > now:
                    # Its worker died holding it and may have sent it just before
                    # the lease ran out: wait out a late apply, then look it up.
                    states.defer(job, settled, claimed=False)
                    continue
                if isinstance(method, str) and method in blocked:
                    # OPERATION_TIME_LIMIT blocks this method only; its jobs wait for the
                    # reset without spending an attempt, the others go ahead.
                    states.defer(job, epoch_to_dt(blocked[method]), claimed=False)
                    continue
                if self.take(job, now):
                    claimed.append(job)

        await self.persist(work, deadline_s=5.0)
        return claimed

    def _settled_at(self, job: OutboxJob) -> datetime | None:
        """For a job reclaimed from a lost lease: when a send made under that
        lease can no longer be applied late."""
        if job.status != states.IN_FLIGHT or job.lease_until is None:
            return None
        return job.lease_until + timedelta(seconds=self.settle_s)

    async def _send(self, wire: list[Plan]) -> tuple[Reply, dict[str, CommandResult]]:
        if len(wire) == 1:
            step = wire[0]
            reply = await self.client.call(
                step.method, step.params, request_id=step.job.request_id or None
            )
            item = CommandResult(
                step.command_name, step.method, reply.result, reply.error, reply.time
            )
            return reply, {step.command_name: item}
        request_ids = {step.job.request_id for step in wire}
        # One request for many origins: its own id; each job's id goes to its log row.
        request_id = (
            request_ids.pop() if len(request_ids) == 1 and None not in request_ids else None
        )
        answer = await self.client.batch(
            {step.command_name: (step.method, step.params) for step in wire},
            request_id=request_id or f"batch-{uuid.uuid4()}",
        )
        return answer.reply, answer.commands

    async def _complete(
        self,
        plans: list[Plan],
        decisions: dict[int, Decision],
        feedback: Feedback,
        reply: Reply | None,
    ) -> None:
        by_id = {step.job.id: step for step in plans}
        outcomes: dict[str, int] = {}

        async def work(session: AsyncSession) -> None:
            outcomes.clear()
            held = await OutboxRepository(session).held(list(decisions), self.worker_id)
            # The limiter first: a 429 names no reset, so how long its method
            # stays blocked (and its job waits) comes from the shared state.
            blocked = await self.throttle.apply(session, feedback)
            for job in held:
                decision, step = decisions[job.id], by_id[job.id]
                limited = decision.error is not None and (
                    decision.error.outcome is Outcome.OPERATING_LIMITED
                )
                if limited and decision.not_before is None:
                    decision.not_before = blocked.get(step.method)
                if decision.exchange is not None and reply is not None:
                    log_b24(
                        session,
                        method=step.method,
                        params=step.params,
                        reply=reply,
                        result=decision.exchange.result,
                        error=decision.exchange.error,
                        request_id=job.request_id,
                        resource_ref=job.ordering_key or f"outbox:{job.id}",
                        retry_count=max(0, job.attempts - 1),
                    )
                state = await self._apply(session, job, decision, reply)
                outcomes[state] = outcomes.get(state, 0) + 1
            lost = set(decisions) - {job.id for job in held}
            if lost:
                log.warning("outbox_lease_lost", job_ids=sorted(lost))

        await self.persist(work)
        for step in plans:
            decision = decisions.get(step.job.id)
            if decision is not None and decision.exchange is not None:
                result = decision.error.outcome.value if decision.error else "ok"
                metrics.outbound("b24", step.method, result)

    async def _apply(
        self, session: AsyncSession, job: OutboxJob, decision: Decision, reply: Reply | None
    ) -> str:
        exchange_id = reply.request_id if reply is not None else None
        if decision.action is Fate.CONTINUE:
            # The lookup (or status plan) needs another step: at once, same attempt.
            if task_status.goal_of(payload_method(job)) is not None:
                task_status.keep(job, decision.result)
                if decision.settled:
                    job.outcome_unknown = False
            else:
                verify.advance(job, decision.result)
            states.defer(job, utcnow())
            return "continue"
        # Whatever else happens, a lookup or plan in progress starts afresh next time.
        verify.advance(job, None)
        task_status.keep(job, None)
        if decision.action is Fate.RECHECK:
            states.recheck(job)
            return "recheck"
        if decision.action is Fate.DONE:
            hook_error = await self._run_hook(session, job, decision.result)
            if hook_error is None:
                states.done(job, decision.result)
                return states.DONE
            # The call succeeded; keep its result so a replay runs only the hook.
            job.result = decision.result
            states.dead(job, states.failure_entry(job, code="HOOK_FAILED", error=hook_error))
            return states.DEAD
        error = decision.error
        entry = states.failure_entry(
            job,
            code=decision.code or (error.code if error else "INVALID_PAYLOAD"),
            error=decision.message,
            http_status=error.http_status if error else None,
            exchange_request_id=exchange_id,
        )
        if decision.action is Fate.DEAD:
            states.dead(job, entry)
            await self._run_failure_hook(session, job, entry)
            return states.DEAD
        not_before = epoch_to_dt(decision.not_before) if decision.not_before else None
        return states.fail(
            job,
            entry,
            self.retry,
            not_before=not_before,
            unknown=decision.unknown,
            settle_s=self.settle_s,
        )

    async def _run_failure_hook(
        self, session: AsyncSession, job: OutboxJob, entry: dict[str, Any]
    ) -> None:
        """A failure hook's own failure is logged, never blocks the job's move
        to the DLQ (its reason is kept there either way)."""
        name = job.payload.get("on_dead") if isinstance(job.payload, dict) else None
        if not name:
            return
        previous = current_request_id()
        set_request_id(job.request_id)
        try:
            async with savepoint(session):
                await get_failure_hook(str(name))(
                    session, job.payload.get("context") or {}, job.id, entry
                )
        except Exception as exc:
            if is_transient_db_error(exc):
                raise
            log.exception("outbox_failure_hook_failed", job_id=job.id, hook=name)
        finally:
            set_request_id(previous)

    async def _run_hook(self, session: AsyncSession, job: OutboxJob, result: Any) -> str | None:
        name = job.payload.get("on_result") if isinstance(job.payload, dict) else None
        if not name:
            return None
        previous = current_request_id()
        set_request_id(job.request_id)
        try:
            async with savepoint(session):
                await get_hook(str(name))(session, job.payload.get("context") or {}, result)
        except Exception as exc:
            if is_transient_db_error(exc):
                raise
            log.exception("outbox_hook_failed", job_id=job.id, hook=name)
            return f"result hook {name!r} failed: {type(exc).__name__}: {exc}"
        finally:
            set_request_id(previous)
        return None
