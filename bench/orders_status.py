"""``POST /api/v1/ww/orders/{id}/status`` on PostgreSQL, against ``GET`` of the same order.

    python bench/orders_status.py [--duration 8]

Starts a throw-away PostgreSQL (as the tests do), migrates it, seeds ten
couriers and, for each, READY orders linked to a Bitrix24 task, then runs
``b24mw serve`` (one uvicorn process, pinned to core 0 when ``taskset``
exists; PostgreSQL shares core 1 with this process) and, from this process,
bounded phases with 10 concurrent clients (one courier each):

- ``baseline_get_c10``: ``GET /api/v1/ww/orders/{id}`` of the order the client
  is about to move — auth, one read, the response;
- ``status_c10``: the courier walks each order READY → PICKED_UP → ON_ROUTE →
  DELIVERED → CASH_RETURNED → DONE, one request per move (each writes the
  status, a ``task_events`` row, the Bitrix24 comment and task-method jobs and
  the CloudEvent job, plus the idempotency record), each client sending as
  soon as it has its answer (closed loop: latency ≈ 10 / throughput);
- ``status_c10_paced``: the same moves offered at ``--paced-rps`` in total,
  below saturation: service time plus real queueing.

The load generator is a minimal keep-alive HTTP/1.1 client on asyncio streams.
Afterwards the database is checked against the 200s.  Prints one JSON document.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any

from common import (  # bench/ is on sys.path when run as a script
    SERVER_CORE,
    Phase,
    arg_parser,
    can_pin,
    count_rows,
    pin_self,
    pinned_api,
    prepare_database,
    print_json,
    run_phase,
    throwaway_postgres,
    token,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

CLIENTS = 10
COURIERS = [f"bench-{i}" for i in range(CLIENTS)]
ORDERS_PER_COURIER = 900
MOVES = ["PICKED_UP", "ON_ROUTE", "DELIVERED", "CASH_RETURNED", "DONE"]
# Jobs each move writes with one event sink: comment + event, plus the task
# method on ON_ROUTE (start) and DONE (complete).
JOBS_PER_MOVE = {"PICKED_UP": 2, "ON_ROUTE": 3, "DELIVERED": 2, "CASH_RETURNED": 2, "DONE": 3}
TARGET_P95_MS = 25.0
TABLES = ("task_events", "outbox")


class Courier:
    """One client: a courier walking their own orders through the moves."""

    def __init__(self, courier_id: str, order_ids: list[int]) -> None:
        self.auth = f"Authorization: Bearer {token('courier', courier_id)}\r\n"
        self.orders = order_ids
        self.position = 0  # index into orders × MOVES

    def current(self) -> tuple[int, str]:
        order, move = divmod(self.position, len(MOVES))
        return self.orders[order], MOVES[move]

    def get(self) -> bytes:
        order_id, _ = self.current()
        return (
            f"GET /api/v1/ww/orders/{order_id} HTTP/1.1\r\nHost: bench\r\n{self.auth}\r\n"
        ).encode()

    def move(self) -> bytes:
        order_id, status = self.current()
        body = json.dumps({"status": status}).encode()
        head = (
            f"POST /api/v1/ww/orders/{order_id}/status HTTP/1.1\r\nHost: bench\r\n{self.auth}"
            f"Idempotency-Key: {uuid.uuid4().hex}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


async def walk(
    port: int, seconds: float, couriers: list[Courier], moving: bool, rate: float = 0.0
) -> tuple[Phase, dict[str, int]]:
    """One client per courier, each reading (``moving`` false) or moving its
    current order; closed loop, or paced at ``rate`` requests/s in total.
    Returns the phase and the moves that succeeded."""
    moves: dict[str, int] = {}

    def build(client_no: int, _: int) -> bytes:
        courier = couriers[client_no]
        return courier.move() if moving else courier.get()

    def on_status(client_no: int, status: int) -> None:
        if moving and status == 200:
            courier = couriers[client_no]
            _, move = courier.current()
            moves[move] = moves.get(move, 0) + 1
            courier.position += 1

    phase = await run_phase(port, len(couriers), seconds, build, rate=rate, on_status=on_status)
    return phase, moves


async def seed_orders(conn: AsyncConnection) -> dict[str, list[int]]:
    from sqlalchemy import text

    orders: dict[str, list[int]] = {}
    for n, cid in enumerate(COURIERS, start=1):
        rows = [
            {"task": 100_000 * n + k, "courier": cid, "title": f"Order {n}-{k}"}
            for k in range(ORDERS_PER_COURIER)
        ]
        await conn.execute(
            text(
                "INSERT INTO instant_orders (task_id_b24, courier_id, title,"
                " customer_name, status, total_amount, currency_code, origin, version,"
                " created_at, updated_at) VALUES (:task, :courier, :title, 'Bench',"
                " 'READY', 990.00, 'RUB', 'api', 1, now(), now())"
            ),
            rows,
        )
        await conn.execute(
            text(
                "INSERT INTO instant_order_lines (order_id, line_no, sku, name, qty,"
                " price) SELECT id, 1, 'SKU-1', 'Item', 1, 990.00 FROM instant_orders"
                " WHERE courier_id = :courier"
            ),
            {"courier": cid},
        )
        ids = await conn.execute(
            text("SELECT id FROM instant_orders WHERE courier_id = :c ORDER BY id"),
            {"c": cid},
        )
        orders[cid] = [int(i) for i in ids.scalars()]
    return orders


async def main(duration: float, paced_rps: float) -> dict[str, Any]:
    orders: dict[str, list[int]] = {}

    async def seed(conn: AsyncConnection) -> None:
        orders.update(await seed_orders(conn))

    with throwaway_postgres() as (url, tmp):
        couriers_b24 = {cid: 900 + n for n, cid in enumerate(COURIERS, start=1)}
        await prepare_database(url, couriers_b24, seed)
        couriers = [Courier(cid, ids) for cid, ids in orders.items()]
        with pinned_api(url, tmp) as port:
            await walk(port, 1.0, couriers, moving=True)  # warm-up: pool, caches
            before = await count_rows(url, TABLES)
            base, _ = await walk(port, duration, couriers, moving=False)
            moved, moved_moves = await walk(port, duration, couriers, moving=True)
            paced, paced_moves = await walk(port, duration, couriers, moving=True, rate=paced_rps)
            after = await count_rows(url, TABLES)
    base_summary = base.summary()
    moved_summary = moved.summary()
    paced_summary = paced.summary()
    paced_summary["offered_rps"] = paced_rps
    new = {k: after[k] - before[k] for k in after}
    moves = {m: moved_moves.get(m, 0) + paced_moves.get(m, 0) for m in MOVES}
    expected_jobs = sum(JOBS_PER_MOVE[m] * n for m, n in moves.items())
    ok = moved.statuses.get(200, 0) + paced.statuses.get(200, 0)
    return {
        "benchmark": "orders_status",
        "engine": "postgresql",
        "api_processes": 1,
        "pinned": can_pin(SERVER_CORE),
        "baseline_get_c10": base_summary,
        "status_c10": moved_summary,
        "status_c10_paced": paced_summary,
        "status_vs_baseline_p95_x": (
            round(moved_summary["p95_ms"] / base_summary["p95_ms"], 1)
            if moved_summary["p95_ms"] and base_summary["p95_ms"]
            else None
        ),
        "target_p95_ms": TARGET_P95_MS,
        "p95_target_met": bool(
            moved_summary["p95_ms"] and moved_summary["p95_ms"] <= TARGET_P95_MS
        ),
        "paced_p95_target_met": bool(
            paced_summary["p95_ms"] and paced_summary["p95_ms"] <= TARGET_P95_MS
        ),
        "database_check": {
            "status_200": ok,
            "moves": moves,
            "new_rows": new,
            "one_status_event_per_200": new["task_events"] == ok,
            "jobs_match_moves": new["outbox"] == expected_jobs,
        },
    }


if __name__ == "__main__":
    parser = arg_parser(__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per phase (≤ 15)")
    parser.add_argument(
        "--paced-rps", type=float, default=60.0, help="total rate of the paced status phase"
    )
    args = parser.parse_args()
    duration = min(max(args.duration, 1.0), 15.0)
    pin_self()
    print_json(asyncio.run(main(duration, args.paced_rps)))
