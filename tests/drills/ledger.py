"""Account for everything: the check every fault drill ends with.

After a drill (a worker killed, the API killed, the database restarted, the
portal down, webhooks duplicated...) and once the system has settled, this
reads the database, the Bitrix24 emulator (its tasks, comments and call log)
and the CloudEvents that were delivered, and fails with a message naming
what is missing or doubled:

- the queues are empty: no outbox job pending or in flight, no inbox row
  waiting or failed; dead letters only as many as the drill expects;
- every order, delivery and return left the trace it must leave: a tagged
  task has one order (or the comment refusing it), an order from a task was
  answered in it exactly once, a delivery's task exists, a rejected return
  has one "return the goods" subtask, every return announced its creation;
- the portal saw no duplicate effect: no job marker (the ``[b24mw:…]`` line
  on every comment and task b24mw writes) appears twice, every delivered
  comment or task is there exactly once, and no status method took effect
  more often than it was asked for;
- every CloudEvent job was delivered, its event among those received (each
  once, unless the drill killed a worker mid-delivery: a sink is at least
  once, its consumers deduplicate by ``id``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from b24mw.i18n import t
from b24mw.kit.db import Database
from b24mw.models.couriers import Courier
from b24mw.models.ops import OutboxJob, WebhookInbox
from b24mw.models.orders import Delivery, InstantOrder
from b24mw.models.returns import Return

MARKER = re.compile(r"\[(b24mw:[0-9a-f]{12})\]")
STATUS_METHODS = ("tasks.task.start", "tasks.task.complete", "tasks.task.defer", "tasks.task.renew")
OPEN_JOBS = ("pending", "in_flight")
OPEN_INBOX = ("pending", "processing", "failed")


@dataclass
class Ledger:
    """What the drill left behind, counted (for the drill's own assertions)."""

    orders: int = 0
    deliveries: int = 0
    returns: int = 0
    jobs: Counter[str] = field(default_factory=Counter)
    inbox: Counter[str] = field(default_factory=Counter)
    portal_tasks: int = 0
    portal_effects: int = 0
    events: int = 0
    problems: list[str] = field(default_factory=list)

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)


def read_events(path: Path) -> list[dict[str, Any]]:
    """The CloudEvents appended to a ``file://`` sink."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def _rows(db: Database, model: Any) -> list[Any]:
    async with db.reader() as session:
        return list((await session.execute(select(model))).scalars())


def _texts(task: dict[str, Any]) -> list[str]:
    """What b24mw may have written on a task: its comments (classic or chat) and
    its description (tasks b24mw created carry their marker there)."""
    return [str(c.get("text") or "") for c in task["comments"]] + [task["description"] or ""]


def _answer_prefix(order_id: int, locale: str) -> str:
    text = t(
        "webhook.order_created", locale, id=order_id, lines=0, total=0, currency="", courier=""
    )
    return text.split(":")[0]


def _successful_commands(calls: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every call that took effect, batch commands unpacked: (method, args)."""
    done: list[tuple[str, dict[str, Any]]] = []
    for call in calls:
        if call["method"] == "batch":
            done += [
                (c["method"], c["args"])
                for c in call.get("commands") or []
                if c.get("method") and c.get("error") is None
            ]
        elif call.get("error") is None and (call.get("status") or 200) < 400:
            done.append((call["method"], call["args"]))
    return done


def _task_id(args: Any) -> int | None:
    if not isinstance(args, dict):
        return None
    for key in ("taskId", "TASKID", "taskid", "id"):
        if key in args:
            try:
                return int(args[key])
            except (TypeError, ValueError):
                return None
    return None


async def account_for_everything(
    db: Database,
    portal: httpx.AsyncClient,
    *,
    events: list[dict[str, Any]] | None = None,
    events_at_least_once: bool = False,
    dead_allowed: int = 0,
    order_tag: str = "instant_order",
    locale: str = "ru",
) -> Ledger:
    """Check everything (see the module's docstring); raise AssertionError
    listing every problem found, else return the counts.  ``portal`` is an
    httpx client on the emulator (its ``/_emulator/`` control API)."""
    ledger = Ledger()
    jobs: list[OutboxJob] = await _rows(db, OutboxJob)
    inbox: list[WebhookInbox] = await _rows(db, WebhookInbox)
    orders: list[InstantOrder] = await _rows(db, InstantOrder)
    deliveries: list[Delivery] = await _rows(db, Delivery)
    returns: list[Return] = await _rows(db, Return)
    b24_users = {c.id: c.b24_user_id for c in await _rows(db, Courier)}
    tasks: list[dict[str, Any]] = (await portal.get("/_emulator/tasks")).raise_for_status().json()
    calls: list[dict[str, Any]] = (await portal.get("/_emulator/calls")).raise_for_status().json()
    ledger.orders, ledger.deliveries, ledger.returns = len(orders), len(deliveries), len(returns)
    ledger.jobs = Counter(job.status for job in jobs)
    ledger.inbox = Counter(row.status for row in inbox)
    ledger.portal_tasks = len(tasks)

    # The queues are empty, and dead letters only where the drill expects them.
    open_jobs = [(j.id, j.kind, j.status) for j in jobs if j.status in OPEN_JOBS]
    ledger.check(not open_jobs, f"outbox jobs still open: {open_jobs}")
    dead = [(j.id, j.kind, j.last_error) for j in jobs if j.status == "dead"]
    ledger.check(
        len(dead) == dead_allowed, f"{len(dead)} dead jobs, {dead_allowed} expected: {dead}"
    )
    waiting = [(r.id, r.event, r.status, r.errors) for r in inbox if r.status in OPEN_INBOX]
    ledger.check(not waiting, f"inbox rows not settled: {waiting}")

    # The portal saw every effect once: no marker twice, every delivered one there.
    markers = Counter(m for task in tasks for text in _texts(task) for m in MARKER.findall(text))
    ledger.portal_effects = sum(markers.values())
    doubled = {m: n for m, n in markers.items() if n > 1}
    ledger.check(not doubled, f"effects doubled in the portal: {doubled}")
    for job in jobs:
        marker = job.payload.get("marker") if job.kind == "b24.call" else None
        if marker and job.status == "done":
            ledger.check(
                markers[marker] == 1,
                f"job {job.id} ({job.payload['method']}) is done but its marker "
                f"{marker} is in the portal {markers[marker]} times",
            )
    asked = Counter(
        (job.payload["method"], _task_id(job.payload.get("params")))
        for job in jobs
        if job.kind == "b24.call" and job.payload.get("method") in STATUS_METHODS
    )
    applied = Counter(
        (method, _task_id(args))
        for method, args in _successful_commands(calls)
        if method in STATUS_METHODS
    )
    over = {key: n for key, n in applied.items() if n > asked[key]}
    ledger.check(not over, f"status methods applied more often than asked: {over}")

    # Every order, delivery and return left its trace.
    by_task = Counter(o.task_id_b24 for o in orders if o.task_id_b24 is not None)
    portal_by_id = {task["id"]: task for task in tasks}
    for task in tasks:
        if order_tag not in task["tags"]:
            continue
        count = by_task[task["id"]]
        refused = any(text.startswith(t("webhook.order_rejected", locale)) for text in _texts(task))
        ledger.check(
            count == 1 or (count == 0 and refused),
            f"tagged task {task['id']} has {count} orders"
            + ("" if count else " and no comment refusing one"),
        )
    for order in orders:
        if order.origin == "api" or order.task_id_b24 is None:
            continue
        answered_in = portal_by_id.get(order.task_id_b24)
        ledger.check(
            answered_in is not None, f"order {order.id}: task {order.task_id_b24} not in portal"
        )
        if answered_in is not None:
            prefix = _answer_prefix(order.id, locale)
            answers = sum(text.startswith(prefix) for text in _texts(answered_in))
            ledger.check(answers == 1, f"order {order.id} answered {answers} times in its task")
    for delivery in deliveries:
        ledger.check(
            delivery.task_id_b24 in portal_by_id,
            f"delivery {delivery.id}: its task {delivery.task_id_b24} is not in the portal",
        )
    subtask_title = t("return.subtask.title", locale)
    for ret in returns:
        if ret.status != "rejected" or ret.task_id_b24 is None:
            continue
        under = [
            task
            for task in tasks
            if task["parent_id"] == ret.task_id_b24
            and task["title"] == subtask_title
            and str(ret.id) in (task["description"] or "")
        ]
        # Without a Bitrix24 user for the courier there is nobody to give it to.
        wanted = 1 if b24_users.get(ret.courier_id) else 0
        ledger.check(len(under) == wanted, f"rejected return {ret.id} has {len(under)} subtasks")

    # Every CloudEvent was delivered; returns announced their creation.
    event_jobs = [job for job in jobs if job.kind == "event.publish"]
    announced = Counter(
        job.payload["event"]["subject"]
        for job in event_jobs
        if job.payload["event"]["type"] == "integration.return.created"
    )
    for ret in returns:
        ledger.check(
            announced[f"returns/{ret.id}"] == 1,
            f"return {ret.id}: {announced[f'returns/{ret.id}']} creation events",
        )
    if events is not None:
        received = Counter(event["id"] for event in events)
        ledger.events = len(received)
        for job in event_jobs:
            if job.status == "done":
                ledger.check(
                    received[job.payload["event"]["id"]] >= 1,
                    f"event job {job.id} is done but its event never arrived",
                )
        twice = {event_id: n for event_id, n in received.items() if n > 1}
        ledger.check(events_at_least_once or not twice, f"events delivered more than once: {twice}")
        unknown = set(received) - {job.payload["event"]["id"] for job in event_jobs}
        ledger.check(not unknown, f"events delivered that no job sent: {unknown}")

    assert not ledger.problems, "not everything is accounted for:\n- " + "\n- ".join(
        ledger.problems
    )
    return ledger


async def quiet(db: Database) -> bool:
    """Nothing left to do: no outbox job open, no inbox row waiting."""
    jobs: list[OutboxJob] = await _rows(db, OutboxJob)
    inbox: list[WebhookInbox] = await _rows(db, WebhookInbox)
    return not any(j.status in OPEN_JOBS for j in jobs) and not any(
        r.status in ("pending", "processing") for r in inbox
    )
