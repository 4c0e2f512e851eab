"""Binding the application's event handlers after an installation.

Bitrix24 sends an application only the events it bound with ``event.bind``
(with the application's token), and drops them when the application is
reinstalled or updated (``api-reference/events/event-bind.md``).  So after
each installation the worker asks ``event.get`` what is bound and binds what
is missing: the task (and CRM) events to ``<base>/api/v1/webhooks/bitrix24`` and
``ONAPPUNINSTALL`` to the installation handler, where it marks the
application uninstalled.
"""

from __future__ import annotations

from typing import Any

import structlog

from b24mw.b24app.repository import ACTIVE, AppRepository
from b24mw.bitrix24.errors import Bitrix24Error
from b24mw.outbox.schedulers import WorkerContext

log = structlog.get_logger("b24mw.b24app")

EVENT_PATH = "/api/v1/webhooks/bitrix24"
INSTALL_PATH = "/api/v1/webhooks/bitrix24/install"
# What the inbox processor acts on (webhooks/events.py).
TASK_EVENTS = (
    "ONTASKADD",
    "ONTASKUPDATE",
    "ONTASKDELETE",
    "ONTASKCOMMENTADD",
    "ONTASKCOMMENTUPDATE",
)
# The CRM mirror's events (crm/flows.py), bound while B24MW_CRM_SYNC is on.
CRM_EVENTS = tuple(
    f"ONCRM{kind}{action}" for kind in ("DEAL", "LEAD") for action in ("ADD", "UPDATE", "DELETE")
)


# Customer chats (support/): the CRM activity of each open-line session, and
# the open-line events only an application gets (hints for an earlier read).
CHAT_EVENTS = (
    "ONCRMACTIVITYADD",
    "ONCRMACTIVITYUPDATE",
    "ONSESSIONSTART",
    "ONSESSIONFINISH",
    "ONOPENLINEMESSAGEADD",
)


def wanted(base: str, *, crm: bool = True) -> set[tuple[str, str]]:
    events = TASK_EVENTS + (CRM_EVENTS if crm else ()) + CHAT_EVENTS
    handlers = {(event, base + EVENT_PATH) for event in events}
    return handlers | {("ONAPPUNINSTALL", base + INSTALL_PATH)}


def _bound(result: Any) -> set[tuple[str, str]]:
    # PHP turns an empty list into [] and may key a list by index.
    items = list(result.values()) if isinstance(result, dict) else result
    if not isinstance(items, list):
        return set()
    return {
        (str(item.get("event", "")).upper(), str(item.get("handler", "")))
        for item in items
        if isinstance(item, dict)
    }


async def bind_events(ctx: WorkerContext) -> int:
    """Bind what a fresh installation lacks; the number of handlers bound."""
    if ctx.b24 is None or ctx.settings.b24_auth != "oauth" or not await ctx.b24.ready():
        return 0
    async with ctx.db.reader() as session:
        row = await AppRepository(session).current()
    if row is None or row.state != ACTIVE or row.events_bound_at is not None:
        return 0
    base = ctx.settings.public_url or row.handler_base
    if not base:
        log.error("b24_events_not_bound", hint="set B24MW_PUBLIC_URL and install again")
        return 0
    try:
        present = _bound((await ctx.b24.call("event.get", {})).result)
        missing = sorted(wanted(base, crm=ctx.settings.crm_sync) - present)
        for event, handler in missing:
            await ctx.b24.call("event.bind", {"event": event, "handler": handler})
    except Bitrix24Error as exc:
        # Tried again on the next round (another worker may have bound them meanwhile).
        log.warning("b24_event_bind_failed", error=exc.error.text)
        return 0
    async with ctx.db.unit_of_work() as session:
        await AppRepository(session).events_bound(row.member_id, row.installed_at)
    log.info("b24_events_bound", handlers=len(missing), base=base)
    return len(missing)
