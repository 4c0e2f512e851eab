"""Every path through the order/delivery status matrix, with people changing
the Bitrix24 task's status in between, ends with zero dead jobs and the task
in the status the order calls for — against the strict emulator (the tasks
module's transition table and access rules), on both databases."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from b24mw.kit.db import Database
from b24mw.models.enums import OrderStatus as S
from b24mw.orders.flows import task_methods
from b24mw.orders.machine import FINAL, TRANSITIONS, Transition
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.support.auth import auth
from tests.support.orders import (
    DELIVERIES,
    ORDERS,
    add_couriers,
    create_delivery,
    create_order,
    set_status,
)
from tests.support.outbound import *  # noqa: F403  (shared outbound fixtures)
from tests.support.outbound import EmulatorHandle, drain, jobs

# Distinct 1C document numbers across hypothesis examples sharing one database.
SERIAL = itertools.count(1_000_000)
COURIER_USER = 101  # c1's Bitrix24 user: the task's responsible person
CREATOR = 2  # a manager who created the instant order's task
PERSON_ACTIONS = ("complete", "defer", "renew", "start", "pause")


@pytest.fixture
def settings(outbound_settings: Settings) -> Settings:
    return outbound_settings


@pytest.fixture
async def couriers(db: Database) -> dict[str, int | None]:
    return await add_couriers(db)


def _paths() -> list[list[S]]:
    """Every path from NEW to DONE/REFUSED, going round FAILED → READY at most once."""
    found: list[list[S]] = []

    def walk(state: S, path: list[S], loops: int) -> None:
        if state in FINAL:
            found.append(path)
            return
        for source, target in TRANSITIONS:
            if source is not state:
                continue
            again = loops + ((source, target) == (S.FAILED, S.READY))
            if again <= 1:
                walk(target, [*path, target], again)

    walk(S.NEW, [], 0)
    return found


PATHS = _paths()


def _mover(source: S, target: S) -> tuple[str, str]:
    roles = {r.value for r in TRANSITIONS[(source, target)]}
    role = next(r for r in ("courier", "admin", "1c") if r in roles)
    return role, "c1" if role == "courier" else "boss"


def reached(goal_method: str, status: int) -> int:
    """Where b24mw's job leaves a task that was in ``status`` (no task control)."""
    goals = {
        "tasks.task.start": {3},
        "tasks.task.defer": {6},
        "tasks.task.renew": {1, 2},
        "tasks.task.complete": {4, 5},
    }
    if status in goals[goal_method]:
        return status
    return {
        "tasks.task.start": 3,
        "tasks.task.defer": 6,
        "tasks.task.renew": 2,
        "tasks.task.complete": 5,
    }[goal_method]


@dataclass
class TrackedTask:
    url: str
    path: list[S]
    task_id: int | None = None
    state: S = S.NEW
    # The task's status in the portal now (a new task is pending), and the
    # status methods of our changes whose jobs have not run yet.
    expected: int = 2
    pending: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)

    def settled(self) -> None:
        """Our jobs ran, in order, on whatever status people left the task in."""
        for method in self.pending:
            self.expected = reached(method, self.expected)
        self.pending.clear()


async def _person(emulator: EmulatorHandle, task_id: int, action: str, actor: int) -> int | None:
    """A person's status action; the task's new status, or None when refused."""
    response = await emulator.control.post(
        f"/_emulator/person/tasks/{task_id}/status", json={"action": action, "actor_id": actor}
    )
    if response.status_code == 409:
        return None
    response.raise_for_status()
    status: int = response.json()["status"]
    return status


async def _interfere(emulator: EmulatorHandle, order: TrackedTask, start: int) -> None:
    """The courier does the first of the actions (from ``start``) the task allows."""
    assert order.task_id is not None
    for offset in range(len(PERSON_ACTIONS)):
        action = PERSON_ACTIONS[(start + offset) % len(PERSON_ACTIONS)]
        status = await _person(emulator, order.task_id, action, COURIER_USER)
        if status is not None:
            order.expected = status
            order.history.append(f"person {action} -> {status}")
            return


async def _move(client: httpx.AsyncClient, order: TrackedTask, target: S) -> None:
    role, sub = _mover(order.state, target)
    response = await set_status(client, order.url, target, role, sub)
    assert response.status_code == 200, response.text
    order.pending.extend(task_methods(Transition(order.state, target)))
    order.history.append(f"{order.state.value} -> {target.value}")
    order.state = target


async def _check(db: Database, emulator: EmulatorHandle, orders: list[TrackedTask]) -> None:
    """After a drain: no dead job, and every task where our jobs left it."""
    for order in orders:
        order.settled()
    dead = [(j.payload.get("method"), j.last_error) for j in await jobs(db) if j.status == "dead"]
    assert dead == []
    for order in orders:
        assert order.task_id is not None
        task = await emulator.task(order.task_id)
        assert task["status"] == order.expected, order.history


async def _task_of_delivery(client: httpx.AsyncClient, url: str) -> int:
    stored = (await client.get(url, headers=auth("admin"))).json()
    task_id: int = stored["task_id_b24"]
    return task_id


async def _start(
    client: httpx.AsyncClient, emulator: EmulatorHandle, kind: str, index: int
) -> TrackedTask:
    if kind == "instant":
        task = await emulator.create_task(
            title=f"Street sale {index}", responsible_id=COURIER_USER, created_by=CREATOR
        )
        order = await create_order(client, courier_id="c1", task_id_b24=task["id"])
        return TrackedTask(f"{ORDERS}/{order['id']}", [], task_id=int(task["id"]))
    delivery = await create_delivery(client, external_id_1c=f"ЗК-{index:06d}")
    return TrackedTask(f"{DELIVERIES}/{delivery['id']}", [])


async def _run_matrix(
    client: httpx.AsyncClient,
    worker: Worker,
    emulator: EmulatorHandle,
    db: Database,
    kinds: tuple[str, ...],
    *,
    people: bool,
) -> None:
    orders: list[TrackedTask] = []
    for kind in kinds:
        for path in PATHS:
            order = await _start(client, emulator, kind, len(orders))
            order.path = path
            orders.append(order)
    await drain(worker, settle=True)
    for order in orders:
        if order.task_id is None:
            order.task_id = await _task_of_delivery(client, order.url)
    for step in range(max(len(p) for p in PATHS)):
        for index, order in enumerate(orders):
            if step >= len(order.path):
                continue
            # A third of the orders see no one else; the others see the
            # courier act once, before our change or while its jobs wait.
            acts = people and index % 3 and step == (index * 7) % len(order.path)
            if acts and index % 2:
                await _interfere(emulator, order, index)
            await _move(client, order, order.path[step])
            if acts and not index % 2:
                await _interfere(emulator, order, index)
        await drain(worker, settle=True)
        await _check(db, emulator, orders)
    assert all(order.state in FINAL for order in orders)


@pytest.mark.usefixtures("couriers")
async def test_every_path_ends_with_no_dead_job_and_the_task_where_the_order_is(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle, db: Database
) -> None:
    await _run_matrix(client, worker, emulator, db, ("instant", "delivery"), people=False)
    # The final statuses: completed, from a pending, started or deferred task.
    finals = {t["status"] for t in (await emulator.control.get("/_emulator/tasks")).json()}
    assert finals == {5}


@pytest.mark.usefixtures("couriers")
async def test_every_path_survives_the_courier_changing_the_task_in_between(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle, db: Database
) -> None:
    await _run_matrix(client, worker, emulator, db, ("instant", "delivery"), people=True)


@pytest.mark.usefixtures("couriers")
async def test_without_admin_rights_the_tasks_b24mw_created_still_follow_their_orders(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle, db: Database
) -> None:
    """A non-admin integration user creates the deliveries' tasks: as their
    creator it may move them from any status, whatever the courier does."""
    await emulator.configure(rest_user_admin=False)
    await _run_matrix(client, worker, emulator, db, ("delivery",), people=True)


@pytest.mark.usefixtures("couriers")
async def test_without_admin_rights_a_strangers_task_is_dead_lettered_saying_why(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle, db: Database
) -> None:
    await emulator.configure(rest_user_admin=False)
    tracked = await _start(client, emulator, "instant", 0)
    for target in (S.READY, S.PICKED_UP, S.ON_ROUTE):
        await _move(client, tracked, target)
    await drain(worker, settle=True)
    dead = {j.payload["method"]: j for j in await jobs(db) if j.status == "dead"}
    assert set(dead) == {"tasks.task.start", "task.commentitem.add"}
    start = dead["tasks.task.start"]
    assert start.error_history[-1]["code"] == "TASK_STATUS_REFUSED"
    assert start.last_error is not None
    assert "not visible to the integration user" in start.last_error
    for job in dead.values():
        assert job.last_error is not None
        assert job.last_error.startswith("refused for lack of rights")


@pytest.mark.usefixtures("couriers")
async def test_under_task_control_a_done_order_leaves_the_task_for_the_creator_to_approve(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle, db: Database
) -> None:
    task = await emulator.create_task(
        title="Checked sale", responsible_id=COURIER_USER, created_by=CREATOR, task_control=True
    )
    order = await create_order(client, courier_id="c1", task_id_b24=task["id"])
    tracked = TrackedTask(f"{ORDERS}/{order['id']}", [], task_id=int(task["id"]))
    for target in (S.READY, S.PICKED_UP, S.ON_ROUTE, S.DELIVERED, S.DONE):
        await _move(client, tracked, target)
    await drain(worker, settle=True)
    # b24mw is not the creator: its completion awaits the creator's review.
    assert (await emulator.task(int(task["id"])))["status"] == 4
    assert {j.status for j in await jobs(db)} == {"done"}
    assert await _person(emulator, int(task["id"]), "approve", CREATOR) == 5


@pytest.mark.usefixtures("couriers")
async def test_a_task_already_where_the_order_goes_gets_no_call(
    client: httpx.AsyncClient, worker: Worker, emulator: EmulatorHandle, db: Database
) -> None:
    tracked = await _start(client, emulator, "instant", 0)
    assert tracked.task_id is not None
    for target in (S.READY, S.PICKED_UP, S.ON_ROUTE, S.DELIVERED):
        await _move(client, tracked, target)
    await drain(worker, settle=True)
    # The courier closes the task before b24mw hears the order is done.
    assert await _person(emulator, tracked.task_id, "complete", COURIER_USER) == 5
    before = len(await emulator.calls())
    await _move(client, tracked, S.DONE)
    await drain(worker, settle=True)
    methods = [c["method"] for c in (await emulator.calls())[before:]]
    assert methods == ["task.commentitem.add", "tasks.task.get"]  # read, nothing to send
    assert {j.status for j in await jobs(db)} == {"done"}


@examples(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
@pytest.mark.usefixtures("couriers")
async def test_any_interleaving_of_our_changes_and_a_persons_keeps_the_task_in_step(
    client: httpx.AsyncClient,
    worker: Worker,
    emulator: EmulatorHandle,
    db: Database,
    data: st.DataObject,
) -> None:
    kind = data.draw(st.sampled_from(["instant", "delivery"]), label="kind")
    order = await _start(client, emulator, kind, next(SERIAL))
    await drain(worker, settle=True)
    if order.task_id is None:
        order.task_id = await _task_of_delivery(client, order.url)
    for _ in range(data.draw(st.integers(min_value=1, max_value=12), label="steps")):
        moves = [to for (frm, to) in TRANSITIONS if frm is order.state]
        if not moves:
            break
        if data.draw(st.booleans(), label="person acts"):
            action = data.draw(st.sampled_from(PERSON_ACTIONS), label="action")
            actor = data.draw(st.sampled_from([COURIER_USER, CREATOR]), label="actor")
            status = await _person(emulator, order.task_id, action, actor)
            if status is not None:
                order.expected = status
        await _move(client, order, data.draw(st.sampled_from(moves), label="move"))
        if data.draw(st.booleans(), label="drain now"):
            await drain(worker, settle=True)
            await _check(db, emulator, [order])
    await drain(worker, settle=True)
    await _check(db, emulator, [order])
