"""Direct, throttled Bitrix24 calls for code that needs the answer now.

The outbox is the path for writes.  Reads a job needs to do its work (the
webhook inbox fetching ``tasks.task.get``, reconciliation listing tasks) go
through this gateway: the same shared limiter, the same error table, one
``integration_log`` row per exchange.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.bitrix24.client import Bitrix24Client, CommandResult, Reply
from b24mw.bitrix24.errors import (
    Bitrix24Error,
    Bitrix24Unavailable,
    CallError,
    HeldBack,
    Outcome,
)
from b24mw.bitrix24.throttle import Feedback, SharedThrottle, learn
from b24mw.history.repository import log_exchange
from b24mw.kit.db import Database
from b24mw.kit.request_context import current_request_id
from b24mw.models.enums import LogDirection


def log_b24(
    session: AsyncSession,
    *,
    method: str,
    params: Any,
    reply: Reply,
    result: Any = None,
    error: CallError | None = None,
    request_id: str | None = None,
    resource_ref: str | None = None,
    retry_count: int = 0,
) -> None:
    """One ``integration_log`` row for one Bitrix24 call (or one batch command)."""
    response: Any = {"result": result} if error is None else {"error": error.as_dict()}
    if reply.method == "batch":
        response["batch_request_id"] = reply.request_id
    log_exchange(
        session,
        direction=LogDirection.OUT,
        system="b24",
        endpoint=method,
        status="ok" if error is None else "error",
        http_code=reply.http_status,
        resource_ref=resource_ref,
        request=params,
        response=response,
        error_code=error.code if error else None,
        retry_count=retry_count,
        request_id=request_id or reply.request_id,
    )


# Told of every exchange: (method or "batch", outcome).  The worker counts them
# with its own outbound calls; the client package keeps no counter of them.
ExchangeCounter = Callable[[str, str], None]


class Bitrix24Gateway:
    def __init__(
        self,
        db: Database,
        client: Bitrix24Client,
        throttle: SharedThrottle,
        *,
        on_exchange: ExchangeCounter,
    ) -> None:
        self.db = db
        self.client = client
        self.throttle = throttle
        self.on_exchange = on_exchange

    async def ready(self) -> bool:
        """False while no call can be authorised (the local application is not
        installed, or its tokens were refused): work waits instead of failing."""
        return await self.client.target.ready()

    @property
    def user_id(self) -> int | None:
        """The Bitrix24 user our calls act as, when known."""
        return self.client.target.user_id

    async def call(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        resource_ref: str | None = None,
        wait_s: float = 30.0,
    ) -> Reply:
        """Call ``method`` within the shared quota and return the successful reply.

        Raises ``Bitrix24Unavailable`` (retry later: throttled, blocked, 5xx,
        timeout) or ``Bitrix24Error`` (refused for good).
        """
        await self._wait_for_slot(method, wait_s)
        request_id = current_request_id()
        reply = await self.client.call(method, params, request_id=request_id)
        feedback = Feedback()
        learn(feedback, reply)
        async with self.db.unit_of_work() as session:
            log_b24(
                session,
                method=method,
                params=dict(params or {}),
                reply=reply,
                result=reply.result,
                error=reply.error,
                request_id=request_id,
                resource_ref=resource_ref,
            )
            await self.throttle.apply(session, feedback)
        outcome = reply.error.outcome.value if reply.error else "ok"
        self.on_exchange(method, outcome)
        if reply.error is not None:
            if reply.error.outcome is Outcome.PERMANENT:
                raise Bitrix24Error(reply.error, method)
            raise Bitrix24Unavailable(reply.error, method)
        return reply

    async def batch(
        self,
        commands: Mapping[str, tuple[str, Mapping[str, Any] | None]],
        *,
        wait_s: float = 30.0,
    ) -> dict[str, CommandResult]:
        """Several reads for one request against the quota; per-command errors are
        returned, not raised.  A failure of the whole request raises."""
        await self._wait_for_slot("batch", wait_s)
        request_id = current_request_id()
        answer = await self.client.batch(commands, request_id=request_id)
        feedback = Feedback()
        learn(feedback, answer.reply, list(answer.commands.values()))
        async with self.db.unit_of_work() as session:
            for key, item in answer.commands.items():
                log_b24(
                    session,
                    method=item.method,
                    params=dict(commands[key][1] or {}),
                    reply=answer.reply,
                    result=item.result,
                    error=item.error,
                    request_id=request_id,
                )
            await self.throttle.apply(session, feedback)
        error = answer.reply.error
        self.on_exchange("batch", error.outcome.value if error else "ok")
        if error is not None:
            if error.outcome is Outcome.PERMANENT:
                raise Bitrix24Error(error, "batch")
            raise Bitrix24Unavailable(error, "batch")
        return answer.commands

    async def _wait_for_slot(self, method: str, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        async with self.db.reader() as session:
            blocked = await self.throttle.blocked_methods(session)
        if method in blocked:
            raise HeldBack(
                CallError(
                    Outcome.OPERATING_LIMITED,
                    "OPERATION_TIME_LIMIT",
                    "method blocked until its operating time resets",
                    reset_at=blocked[method],
                    may_have_run=False,
                ),
                method,
            )
        # One reservation: the limiter hands out slots in order, so asking again
        # later would not come sooner.
        reservation = await self.throttle.acquire(max(0.0, deadline - time.monotonic()))
        if not reservation.granted:
            raise HeldBack(
                CallError(
                    Outcome.THROTTLED,
                    "THROTTLED",
                    f"no request slot within {wait_s:.0f} s",
                    reset_at=reservation.at,
                    may_have_run=False,
                ),
                method,
            )
