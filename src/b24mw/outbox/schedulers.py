"""Periodic work the worker runs beside the outbox (inbox processing, reconciliation,
retention...).

Write a coroutine in your package and list it, by name, in ``b24mw.registry``::

    async def process_inbox(ctx: WorkerContext) -> int:
        async with ctx.db.unit_of_work() as session:
            ...
        return handled  # items handled this run; 0 when idle

    # b24mw/registry.py
    Scheduler("webhooks.inbox", processor.process_inbox, interval_s=0.2),

Each run owns its units of work.  Bitrix24 reads go through ``ctx.b24`` (the
shared limiter), writes through ``ctx.outbox`` inside your unit of work.
``drain=True`` schedulers also run on every round of ``Worker.drain()`` (until
they return 0), so tests see their effect; use ``drain=False`` for slow sweeps
such as reconciliation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from b24mw.bitrix24.gateway import Bitrix24Gateway
from b24mw.kit.db import Database
from b24mw.outbox.enqueue import Outbox
from b24mw.settings import Settings


@dataclass(frozen=True, slots=True)
class WorkerContext:
    settings: Settings
    db: Database
    http: httpx.AsyncClient
    b24: Bitrix24Gateway | None
    outbox: Outbox
    worker_id: str


SchedulerFn = Callable[[WorkerContext], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Scheduler:
    name: str
    fn: SchedulerFn
    interval_s: float
    drain: bool = True


_REGISTRY: dict[str, Scheduler] = {}


def register_scheduler(
    name: str, fn: SchedulerFn, *, interval_s: float, drain: bool = True
) -> Scheduler:
    if interval_s <= 0:
        raise ValueError("interval_s must be positive")
    entry = Scheduler(name=name, fn=fn, interval_s=interval_s, drain=drain)
    _REGISTRY[name] = entry
    return entry


def unregister_scheduler(name: str) -> None:
    _REGISTRY.pop(name, None)


def registered_schedulers() -> list[Scheduler]:
    return list(_REGISTRY.values())
