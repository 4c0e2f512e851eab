"""The story ``b24mw demo`` plays: people and 1C using the integration the way
they would, each step checked before it is told (a step whose expectation
fails stops the demo with a DemoError saying what was missing)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from b24mw.demo.narrator import MARKER_RE, Narrator
from b24mw.demo.world import World, expect, until
from b24mw.i18n import t


@dataclass(frozen=True, slots=True)
class Person:
    sub: str  # the JWT subject (a courier's id for a courier)
    name: str
    b24_user: int


COURIER = Person("c-17", "Иван Петров", 17)
COURIER_PHONE = "+79123456789"
MANAGER = Person("maria", "Мария Соколова", 42)
ONEC = "1c-erp"
ORDER_TEXT = (
    "- CASE-1 | Чехол для телефона | 2 | 490,00\n"
    "- CHG-2 | Зарядное устройство | 1 | 1290,00\n"
    "customer: Анна Смирнова\n"
    "phone: +7 912 345-67-89"
)
# The walk of an instant order through the status matrix, with who makes each move.
WALK = [
    ("PICKING", "admin"),
    ("READY", "admin"),
    ("PICKED_UP", "courier"),
    ("ON_ROUTE", "courier"),
    ("DELIVERED", "courier"),
    ("CASH_RETURNED", "courier"),
    ("DONE", "courier"),
]
# What the task must show in Bitrix24 after these moves (status codes, BITRIX24.md §2).
TASK_STATUS_AFTER = {"ON_ROUTE": ("3", "in progress"), "DONE": ("5", "completed")}


def _plain(text: str) -> str:
    """A comment as people read it: without b24mw's marker line."""
    return "\n".join(line for line in text.splitlines() if not MARKER_RE.search(line)).strip()


@dataclass
class Story:
    world: World
    say: Narrator
    locale: str
    started: float = field(default_factory=time.monotonic)
    order: dict[str, Any] = field(default_factory=dict)
    task_id: int = 0

    def _t(self, key: str, **values: Any) -> str:
        return t(key, self.locale, **values)

    async def _comments(self, task_id: int) -> list[str]:
        return [_plain(c["text"]) for c in (await self.world.task(task_id))["comments"]]

    async def _comment_appears(self, task_id: int, text: str) -> str:
        async def probe() -> str | None:
            return next((c for c in await self._comments(task_id) if c.startswith(text)), None)

        return await until(f"the comment «{text}» in task {task_id}", probe, self.world.timeout)

    # --- the scenes -------------------------------------------------------------

    async def people(self) -> None:
        self.say.step("A courier and a manager")
        body = {
            "id": COURIER.sub,
            "display_name": COURIER.name,
            "phone": COURIER_PHONE,
            "b24_user_id": COURIER.b24_user,
        }
        courier = await self.world.api_json(
            "POST", "/api/v1/ww/couriers", role="admin", sub=MANAGER.sub, json=body,
            expected=201,
        )  # fmt: skip
        expect(courier["b24_user_id"] == COURIER.b24_user, "the courier lost its Bitrix24 user")
        self.say.ok(
            f"courier {courier['id']} «{courier['display_name']}» registered in b24mw, "
            f"mapped to Bitrix24 user {courier['b24_user_id']}"
        )
        self.say.ok(
            f"manager «{MANAGER.name}»: Bitrix24 user {MANAGER.b24_user} in the portal, "
            f"role admin in b24mw (a JWT with sub {MANAGER.sub!r})"
        )

    async def tagged_task(self) -> None:
        self.say.step("A task tagged instant_order becomes an order")
        since = await self.world.last_call()
        self.say.person(
            MANAGER.name,
            f"creates a task in the portal for {COURIER.name}, tagged instant_order:",
        )
        self.say.quote(ORDER_TEXT)
        task = await self.world.portal(
            "POST",
            "/_emulator/person/tasks",
            json={
                "title": "Продажа на улице: чехол и зарядка",
                "description": ORDER_TEXT,
                "responsible_id": COURIER.b24_user,
                "created_by": MANAGER.b24_user,
                "tags": ["instant_order"],
            },
        )
        self.task_id = int(task["id"])
        clicked = time.monotonic()

        async def order_of_task() -> dict[str, Any] | None:
            listed = await self.world.api_json(
                "GET", "/api/v1/ww/orders", role="admin", sub=MANAGER.sub
            )
            return next((o for o in listed["items"] if o["task_id_b24"] == self.task_id), None)

        order = await until(f"an order for task {self.task_id}", order_of_task, self.world.timeout)
        expect(order["courier_id"] == COURIER.sub, f"order has courier {order['courier_id']}")
        expect(order["total_amount"] == "2270.00", f"order total {order['total_amount']}")
        expect(order["status"] == "NEW", f"new order in status {order['status']}")
        self.say.ok(
            f"order {order['id']} created in b24mw {time.monotonic() - clicked:.1f} s after the "
            f"click: {len(order['items'])} lines, {order['total_amount']} "
            f"{order['currency_code']}, courier {order['courier_id']}, status {order['status']}"
        )
        answer = self._t(
            "webhook.order_created",
            id=order["id"],
            lines=len(order["items"]),
            total=order["total_amount"],
            currency=order["currency_code"],
            courier=COURIER.name,
        )
        await self._comment_appears(self.task_id, answer)
        self.say.ok(f"answered in task {self.task_id}: «{answer}»")
        self.say.calls(await self.world.settle(since))
        self.order = order

    async def statuses(self) -> None:
        order_id = self.order["id"]
        self.say.step(f"Order {order_id} from NEW to DONE, and what each move does in Bitrix24")
        current = "NEW"
        for target, role in WALK:
            since = await self.world.last_call()
            sub = MANAGER.sub if role == "admin" else COURIER.sub
            who = MANAGER.name if role == "admin" else COURIER.name
            moved = await self.world.api_json(
                "POST", f"/api/v1/ww/orders/{order_id}/status", role=role, sub=sub,
                json={"status": target},
            )  # fmt: skip
            expect(
                moved["status"] == target, f"order {order_id} is {moved['status']}, not {target}"
            )
            self.say.person(who, f"({role}) moves order {order_id}: {current} → {target}")
            comment = self._t(
                "order.status_changed", id=order_id, from_status=current, to_status=target
            )
            await self._comment_appears(self.task_id, comment)
            if target in TASK_STATUS_AFTER:
                code, name = TASK_STATUS_AFTER[target]

                async def task_in_status(code: str = code) -> bool:
                    return str((await self.world.task(self.task_id))["status"]) == code

                await until(f"task {self.task_id} {name}", task_in_status, self.world.timeout)
                self.say.ok(f"task {self.task_id} is {name} in Bitrix24 (status {code})")
            self.say.calls(await self.world.settle(since))
            current = target
        events = [
            e
            for e in self.world.cloudevents()
            if e["type"] == "integration.task.status_changed"
            and e["subject"] == f"ww/orders/{order_id}"
        ]
        expect(len(events) == len(WALK), f"{len(events)} status CloudEvents, not {len(WALK)}")
        self.say.ok(
            f"{len(events)} CloudEvents integration.task.status_changed in "
            f"{self.world.stage.events_file.name}"
        )

    async def rejected_return(self) -> None:
        self.say.step("A return, rejected by 1C: a subtask in Bitrix24 and CloudEvents")
        since = await self.world.last_call()
        body = {
            "source": "widget",
            "courier_id": COURIER.sub,
            "task_id_b24": self.task_id,
            "comment": "Клиент вернул чехол: не подошёл по размеру",
            "items": [{"sku": "CASE-1", "qty": 1, "quality": "new", "reason_code": "wrong_size"}],
        }
        created = await self.world.api_json(
            "POST", "/api/v1/returns", role="courier", sub=COURIER.sub, json=body, expected=201
        )
        rid = created["id"]
        self.say.person(COURIER.name, f"records return {rid} of 1 × CASE-1 on task {self.task_id}")
        pending = self._t("return.status.pending")
        await self._comment_appears(
            self.task_id, self._t("return.created", id=rid, lines=1, qty=1, status=pending)
        )
        self.say.ok(f"task {self.task_id} got the comment «Return {rid} created…»")
        await until(
            "1C receiving the return", lambda: self._onec(rid, "created"), self.world.timeout
        )
        self.say.ok(f"1C received the return (Idempotency-Key b24mw:returns:{rid}:created)")

        decided = await self.world.api_json(
            "PATCH", f"/api/v1/returns/{rid}", role="1c", sub=ONEC,
            json={"status": "rejected", "comment": "Упаковка вскрыта, товар не принимаем"},
        )  # fmt: skip
        expect(decided["status"] == "rejected", f"return is {decided['status']}")
        self.say.person("1C", f"rejects return {rid}: «Упаковка вскрыта, товар не принимаем»")
        rejected = self._t("return.status.rejected")
        await self._comment_appears(
            self.task_id,
            self._t("return.status_changed", id=rid, from_status=pending, to_status=rejected),
        )
        title = self._t("return.subtask.title")

        async def subtask() -> dict[str, Any] | None:
            return next(
                (
                    task
                    for task in await self.world.tasks()
                    if task["parent_id"] == self.task_id and task["title"] == title
                ),
                None,
            )

        sub = await until(f"the subtask «{title}»", subtask, self.world.timeout)
        expect(
            sub["responsible_id"] == COURIER.b24_user,
            f"the subtask is for user {sub['responsible_id']}",
        )
        self.say.ok(
            f"subtask {sub['id']} «{title}» under task {self.task_id}, for {COURIER.name} "
            f"(Bitrix24 user {sub['responsible_id']}), deadline {sub['deadline']}"
        )
        self.say.quote(_plain(sub["description"]))
        await until(
            "1C receiving the decision",
            lambda: self._onec(rid, "status:rejected"),
            self.world.timeout,
        )
        self.say.calls(await self.world.settle(since))

        events = [e for e in self.world.cloudevents() if e["subject"] == f"returns/{rid}"]
        kinds = [e["type"] for e in events]
        expect(
            kinds == ["integration.return.created", "integration.return.status_changed"],
            f"CloudEvents of the return: {kinds}",
        )
        self.say.table(
            f"CloudEvents in {self.world.stage.events_file}",
            ["type", "subject", "status", "time"],
            [[e["type"], e["subject"], str(e["data"].get("status")), e["time"]] for e in events],
        )  # fmt: skip
        self.say.table(
            f"What 1C received ({self.world.stage.onec_file.name})",
            ["path", "Idempotency-Key", "status"],
            [
                [r["path"], r["headers"].get("idempotency-key", ""), str(r["body"].get("status"))]
                for r in self.world.onec_received()
            ],
        )

    async def _onec(self, rid: str, step: str) -> bool:
        key = f"b24mw:returns:{rid}:{step}"
        return any(r["headers"].get("idempotency-key") == key for r in self.world.onec_received())

    async def delivery(self) -> None:
        self.say.step("A delivery from 1C becomes the courier's task")
        since = await self.world.last_call()
        body = {
            "external_id_1c": "ЗК-000123",
            "customer_name": "Олег Иванов",
            "address": "Москва, Тверская 1, кв. 5",
            "client_phone": "+79120001122",
            "cod_amount": "1740.00",
            "delivery_price": "250.00",
            "courier_id": COURIER.sub,
            "items": [
                {"sku": "TV-1", "name": "Пульт", "qty": 1, "price": "990.00"},
                {"sku": "BAT-2", "name": "Батарейки", "qty": 2, "price": "250.00"},
            ],
        }
        posted = time.monotonic()
        delivery = await self.world.api_json(
            "POST", "/api/v1/deliveries", role="1c", sub=ONEC, json=body, expected=201
        )
        self.say.person(
            "1C",
            f"posts delivery {body['external_id_1c']} for {COURIER.name}: "
            f"{delivery['total_amount']} {delivery['currency_code']} (b24mw id {delivery['id']})",
        )

        async def task_of_delivery() -> int | None:
            read = await self.world.api_json(
                "GET", f"/api/v1/deliveries/{delivery['id']}", role="1c", sub=ONEC
            )
            task_id: int | None = read["task_id_b24"]
            return task_id

        task_id = await until(
            f"a task for delivery {delivery['id']}", task_of_delivery, self.world.timeout
        )
        task = await self.world.task(task_id)
        title = self._t(
            "delivery.title", external_id=body["external_id_1c"], customer="Олег Иванов"
        )
        expect(task["title"] == title, f"the delivery's task is titled {task['title']!r}")
        expect(task["responsible_id"] == COURIER.b24_user, "the task is not the courier's")
        self.say.ok(
            f"task {task_id} «{task['title']}» for {COURIER.name} in the portal, "
            f"{time.monotonic() - posted:.1f} s after 1C's POST; its id is stored on the delivery"
        )
        self.say.quote(_plain(task["description"]))
        self.say.calls(await self.world.settle(since))

    async def reports(self) -> None:
        self.say.step("The deliveries report and the KMP4 export")
        report = await self.world.api_json(
            "GET", "/api/v1/ww/report/deliveries", role="admin", sub=MANAGER.sub
        )
        rows = report["items"]
        kinds = sorted((r["kind"], r["status"]) for r in rows)
        expected = [("delivery", "DONE"), ("delivery", "NEW"), ("instant", "DONE")]
        expect(kinds == expected, f"report rows {kinds}")
        self.say.table(
            "GET /api/v1/ww/report/deliveries (admin)",
            ["order", "kind", "courier", "status", "title", "total", "minutes"],
            [
                [str(r["order_id"]), r["kind"], r["courier_name"] or "", r["status"], r["title"],
                 f"{r['total_amount']} {r['currency_code']}",
                 "" if r["duration_min"] is None else str(r["duration_min"])]
                for r in rows
            ],
        )  # fmt: skip
        totals = report["totals"]
        amounts = ", ".join(f"{v} {k}" for k, v in totals["amounts_by_currency"].items())
        self.say.ok(
            f"totals: {totals['total_orders']} orders, {amounts}, "
            f"{totals['total_duration_min']} min from first event to DONE"
        )
        csv = await self.world.api(
            "GET", "/api/v1/ww/export/kmp4", role="1c", sub=ONEC, params={"format": "csv"}
        )
        lines = csv.text.splitlines()
        expect(lines[:1] == ["#KMP4_DELIVERY_REPORT,v1"], f"KMP4 starts with {lines[:1]}")
        order_line = next((ln for ln in lines if ln.startswith(f"ww-{self.order['id']},")), "")
        expect(",completed," in order_line, f"KMP4 line of the order: {order_line!r}")
        self.say.say("GET /api/v1/ww/export/kmp4?format=csv (1C):")
        self.say.quote(csv.text.strip())
        self.say.ok(f"next cursor for 1C's next export: {csv.headers.get('x-next-cursor')}")
