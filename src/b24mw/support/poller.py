"""The session poller: keeps open sessions' messages current within a share
of the Bitrix24 quota that order traffic does not need (docs/support.md).

A round spends at most one ``batch`` request of up to 50 commands, at most
once per ``B24MW_SUPPORT_POLL_ROUND_S`` across all workers (the newest
``checked_at`` says when any worker last ran one), and only when no order
traffic is waiting for the quota: no due ``b24.call`` job in the outbox and a
free slot in the shared limiter right now.  Commands go first to sessions
owed a full history read (new, grown, closed, hinted), then to
``imopenlines.dialog.get`` checks of open sessions not checked for
``B24MW_SUPPORT_POLL_INTERVAL_S``, least recently checked first.  A check
that sees ``last_message_id`` past what is stored owes the session a
history read in the next round.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from b24mw.bitrix24.client import CommandResult
from b24mw.bitrix24.errors import Bitrix24Error
from b24mw.kit.request_context import new_request_id, set_request_id
from b24mw.models.base import utcnow
from b24mw.models.enums import ChatStatus, JobKind
from b24mw.outbox.repository import OutboxRepository
from b24mw.outbox.schedulers import WorkerContext
from b24mw.support import flows
from b24mw.support.repository import SupportRepository

log = structlog.get_logger("b24mw.support")
BATCH_COMMANDS = 50
ORDER_TRAFFIC = (JobKind.B24_CALL,)
# What the history read answers for a session that is gone or hidden from us.
GONE = frozenset({"ACCESS_DENIED", "INVALID_SESSION_ID"})


async def order_traffic_waiting(ctx: WorkerContext) -> bool:
    """Order traffic has the quota first: a due Bitrix24 job, or no slot free now."""
    async with ctx.db.reader() as session:
        if await OutboxRepository(session).due_exists(ORDER_TRAFFIC, utcnow()):
            return True
    assert ctx.b24 is not None
    return await ctx.b24.throttle.wait_hint() > 0


def _commands(reads: list[Any], checks: list[Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    commands: dict[str, tuple[str, dict[str, Any]]] = {}
    for row in reads:
        commands[f"h{row.id}"] = (
            "imopenlines.session.history.get",
            {"SESSION_ID": row.b24_session_id},
        )
    for row in checks:
        key = {"CHAT_ID": row.chat_id} if row.chat_id else {"SESSION_ID": row.b24_session_id}
        commands[f"d{row.id}"] = ("imopenlines.dialog.get", key)
    return commands


async def poll_sessions(ctx: WorkerContext) -> int:
    """One round; the number of sessions read or checked."""
    if ctx.b24 is None or not await ctx.b24.ready():
        return 0
    if await order_traffic_waiting(ctx):
        return 0
    now = utcnow()
    interval = timedelta(seconds=ctx.settings.support_poll_interval_s)
    async with ctx.db.unit_of_work() as session:
        repo = SupportRepository(session)
        last = await repo.last_round()
        if last is not None and now - last < timedelta(seconds=ctx.settings.support_poll_round_s):
            return 0
        reads = list(await repo.reads_due(BATCH_COMMANDS))
        room = BATCH_COMMANDS - len(reads)
        checks = list(await repo.checks_due(now - interval, room)) if room > 0 else []
        # Claimed for this round: another worker's round passes them over
        # until they are due again (a read still owed stays owed).
        await repo.mark_checked([r.id for r in [*reads, *checks]], now)
        wanted = [(r.id, "h") for r in reads] + [(r.id, "d") for r in checks]
        commands = _commands(reads, checks)
    if not commands:
        return 0
    set_request_id(new_request_id())
    try:
        answers = await ctx.b24.batch(commands)
    except Bitrix24Error as exc:
        log.warning("support_poll_failed", code=exc.error.code)
        return 0
    finally:
        set_request_id(None)
    for row_id, kind in wanted:
        await _apply(ctx, row_id, kind, answers.get(f"{kind}{row_id}"))
    return len(wanted)


async def _apply(ctx: WorkerContext, row_id: int, kind: str, item: CommandResult | None) -> None:
    if item is None:
        return
    async with ctx.db.unit_of_work() as session:
        row = await SupportRepository(session).get(row_id)
        if row is None:
            return
        if item.error is not None:
            if kind == "h" and item.error.code in GONE:
                # Gone or no longer visible: nothing more will come; stop owing it.
                log.warning(
                    "support_history_refused", session=row.b24_session_id, code=item.error.code
                )
                row.read_due = False
                if row.status == ChatStatus.OPEN:
                    flows.close(row)
                    row.read_due = False
            return
        if kind == "d":
            flows.apply_dialog(row, item.result)
        else:
            await flows.apply_history(session, row, item.result)
