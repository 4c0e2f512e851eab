"""Everything the worker runs, by name, in one place.

Adding a domain's background work means adding lines here, nowhere else:

- a **job kind** is the ``kind`` of an outbox row; the lane named beside it
  claims it (``outbox.b24_lane``, ``outbox.delivery_lane``);
- a **result hook** (``on_result``) or **failure hook** (``on_dead``) is the
  domain code a ``b24.call`` job names, run when its call succeeds or dies;
- a **scheduler** is periodic work beside the outbox (``outbox.schedulers``).

The worker calls ``install()`` when it is built, then refuses to start while
the queue holds a job whose kind or hook is not listed here (see
``outbox.worker.check_queue``): a job written by another version would
otherwise be dead-lettered one by one.  Schedulers run in the order listed.
"""

from __future__ import annotations

from collections.abc import Mapping

from b24mw.b24app import binding
from b24mw.crm import hooks as crm_hooks
from b24mw.crm import reconcile as crm_reconcile
from b24mw.crm.closing import CLOSED_HOOK, REFUSED_HOOK, REREAD_HOOK
from b24mw.deliveries.hooks import TASK_CREATED_HOOK, link_created_task
from b24mw.outbox.b24_lane import B24Lane
from b24mw.outbox.delivery_lane import DeliveryLane
from b24mw.outbox.hooks import (
    FailureHook,
    ResultHook,
    register_failure_hook,
    register_result_hook,
)
from b24mw.outbox.schedulers import Scheduler, register_scheduler
from b24mw.retention import scheduler as retention
from b24mw.support import poller
from b24mw.webhooks import processor
from b24mw.webhooks import reconcile as webhooks_reconcile

# kind -> the lane that claims it
JOB_KINDS: Mapping[str, str] = {
    **{kind: B24Lane.__name__ for kind in B24Lane.kinds},
    **{kind: DeliveryLane.__name__ for kind in DeliveryLane.kinds},
}

RESULT_HOOKS: Mapping[str, ResultHook] = {
    TASK_CREATED_HOOK: link_created_task,
    CLOSED_HOOK: crm_hooks.deal_closed,
    REREAD_HOOK: crm_hooks.deal_reread,
}

FAILURE_HOOKS: Mapping[str, FailureHook] = {
    REFUSED_HOOK: crm_hooks.deal_close_refused,
}

SCHEDULERS: tuple[Scheduler, ...] = (
    Scheduler("b24app.bind_events", binding.bind_events, interval_s=10.0),
    Scheduler("webhooks.inbox", processor.process_inbox, interval_s=0.2),
    Scheduler("webhooks.housekeeping", processor.forget_old_reads, interval_s=60.0, drain=False),
    Scheduler(
        "webhooks.reconcile", webhooks_reconcile.reconcile_when_due, interval_s=5.0, drain=False
    ),
    Scheduler("retention.daily", retention.daily_retention, interval_s=300.0, drain=False),
    Scheduler("crm.reconcile", crm_reconcile.reconcile_when_due, interval_s=5.0, drain=False),
    Scheduler(
        "crm.pipelines", crm_reconcile.refresh_pipelines_when_due, interval_s=5.0, drain=False
    ),
    Scheduler("support.poll", poller.poll_sessions, interval_s=1.0),
)


def install() -> None:
    """Put every hook and scheduler above where the worker looks them up
    (idempotent: each worker built in one process installs the same table)."""
    for name, result_hook in RESULT_HOOKS.items():
        register_result_hook(name, result_hook)
    for name, failure_hook in FAILURE_HOOKS.items():
        register_failure_hook(name, failure_hook)
    for entry in SCHEDULERS:
        register_scheduler(entry.name, entry.fn, interval_s=entry.interval_s, drain=entry.drain)
