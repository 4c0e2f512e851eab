"""Reads at a million rows, and order creation beside return creation (PostgreSQL).

    python bench/reads.py [--rows 1000000] [--events 5] [--duration 5] [--rounds 2]

Starts a throw-away PostgreSQL (as the tests do), migrates it and loads with
``COPY`` ``--rows`` returns and as many Walking Warehouse orders (one line
each, a year of 2025, 100 couriers) and ``--events`` history rows per order
(5,000,000 by default), then ``VACUUM ANALYZE``.  One ``b24mw serve``
process, pinned to core 0 when ``taskset`` exists (PostgreSQL and this load
generator share core 1).  Closed-loop phases, each at 10 and at 200
clients, beside ``GET /health`` measured the same way in the same run:

- ``returns_first`` / ``orders_first``: the first page (20) of the whole list,
  as an administrator, with the default total (estimated);
- ``returns_deep`` / ``orders_deep``: a page by ``cursor`` from a random
  depth of the list (cursors of real rows, made with the API's codec);
- ``returns_filtered``: one courier's ``pending`` returns (1C's question);
  ``orders_filtered``: one status (``READY``) over all couriers;
- ``return_read`` / ``order_read``: ``GET /{id}`` of a random row, with lines;
- ``order_events``: ``GET /ww/orders/{id}/events`` (five history rows);
- ``create``: ``POST /ww/orders`` and ``POST /api/v1/returns`` (two lines
  each, a linked task, a courier's own token), alternating ``--rounds`` times.

``--against REV`` then compares the read phases at 10 clients with the code
at git revision ``REV`` (a temporary worktree of this repository; it must
share this tree's schema): both API processes run side by side on the same
core and database and take turns, phase by phase, ``--rounds`` times, so a
change is not confused with the machine's speed, which moves ±15 % between
runs here.  ``against`` in the output gives, per phase and side, the median
API CPU time per request (from ``/proc``: the steadiest figure),
requests/s and p95, and ``cpu_ratio`` (this tree's CPU per request over
``REV``'s); and ``against.pool``: each side alone on ``return_read`` at 20
clients (more than the pool size, no line) and at 200, with
``connections_opened``.

``connections_opened`` in a phase: PostgreSQL sessions started on the
database during it (``pg_stat_database.sessions``), i.e. connections the API
opened again instead of reusing (issue 19: the pool closed and reopened
them under load).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import statistics
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from common import (  # bench/ is on sys.path when run as a script
    SERVER_CORE,
    Build,
    arg_parser,
    can_pin,
    checkout,
    cpu_seconds,
    health_request,
    pin_self,
    pinned_api,
    pinned_api_process,
    prepare_database,
    print_json,
    run_phase,
    throwaway_postgres,
    token,
)
from reads_seed import Year, keys_at, load, return_id
from report_seed import asyncpg_dsn

COURIERS = [f"b{n}" for n in range(1, 101)]
LIST_P95_MS, LIST_RPS, READ_P95_MS, C200_P99_MS = 25.0, 400.0, 10.0, 1000.0
CREATE_WITHIN = 0.10
ADMIN = f"Authorization: Bearer {token('admin', 'bench')}\r\n"
# 1C is not there: nothing a read or a create does waits for it.
ONEC_URL = "http://127.0.0.1:9/1c"
ONEC = f"Authorization: Bearer {token('1c', 'erp')}\r\n"


def get(path: str, auth: str = ADMIN) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n".encode()


def cursor_codecs() -> dict[str, Any] | None:
    """The API's cursor codecs, or None for a version without cursors (then
    the deep phases page by ``page=`` instead: the figure before issue 19)."""
    try:
        from b24mw.returns.schemas import RETURN_CURSOR
        from b24mw.ww.schemas import ORDER_CURSOR
    except ImportError:
        return None
    return {"returns": RETURN_CURSOR, "instant_orders": ORDER_CURSOR}


async def deep_requests(url: str, rows: int, rng: random.Random) -> dict[str, list[bytes]]:
    codecs = cursor_codecs()
    depths = sorted(rng.randrange(rows // 10, rows - 100) for _ in range(200))
    out: dict[str, list[bytes]] = {}
    for table, path in (("returns", "/api/v1/returns"), ("instant_orders", "/api/v1/ww/orders")):
        if codecs is None:
            # Page mode only: OFFSET as deep as the old API allowed cheaply.
            out[table] = [get(f"{path}?page={d // 20}") for d in depths]
            continue
        keys = await keys_at(url, table, depths)
        out[table] = [get(f"{path}?cursor={codecs[table].encode(key)}") for key in keys]
    return out


def cycling(requests: list[bytes]) -> Build:
    def build(client_no: int, n: int) -> bytes:
        return requests[(client_no * 7919 + n) % len(requests)]

    return build


def read_phases(year: Year, deep: dict[str, list[bytes]], rng: random.Random) -> dict[str, Build]:
    def ids(count: int = 2000) -> list[int]:
        return [rng.randrange(1, year.rows + 1) for _ in range(count)]

    returns_filtered = [
        get(f"/api/v1/returns?status=pending&courier_id={c}", ONEC) for c in COURIERS
    ]
    return {
        "returns_first": cycling([get("/api/v1/returns")]),
        "returns_deep": cycling(deep["returns"]),
        "returns_filtered": cycling(returns_filtered),
        "orders_first": cycling([get("/api/v1/ww/orders")]),
        "orders_deep": cycling(deep["instant_orders"]),
        "orders_filtered": cycling([get("/api/v1/ww/orders?status=READY")]),
        "return_read": cycling([get(f"/api/v1/returns/{return_id(n)}") for n in ids()]),
        "order_read": cycling([get(f"/api/v1/ww/orders/{n}") for n in ids()]),
        "order_events": cycling([get(f"/api/v1/ww/orders/{n}/events") for n in ids()]),
    }


LISTS = (
    "returns_first",
    "returns_deep",
    "returns_filtered",
    "orders_first",
    "orders_deep",
    "orders_filtered",
)
READS = ("return_read", "order_read", "order_events")


def post(path: str, courier: str, body: dict[str, Any], tokens: dict[str, str]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {tokens[courier]}\r\n"
        f"Idempotency-Key: {uuid.uuid4().hex}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def create_phases() -> dict[str, Build]:
    tokens = {c: token("courier", c) for c in COURIERS[:10]}
    # A task of its own per order (one order per task and courier), across phases.
    tasks = itertools.count(500_000_000)

    def order(client_no: int, n: int) -> bytes:
        courier = COURIERS[client_no % 10]
        line = {"sku": f"SKU-{n % 50}", "name": "Phone case", "qty": 1 + n % 3, "price": "490.00"}
        body = {
            "task_id_b24": next(tasks),
            "title": "Street sale",
            "customer_name": "Ivan Petrov",
            "client_phone": "+79123456789",
            "items": [line, {**line, "sku": "SKU-X", "name": "Charger"}],
        }
        return post("/api/v1/ww/orders", courier, body, tokens)

    def ret(client_no: int, n: int) -> bytes:
        courier = COURIERS[client_no % 10]
        line = {"sku": f"SKU-{n % 50}", "qty": 1, "quality": "defect", "reason_code": "broken"}
        body = {
            "source": "widget",
            "courier_id": courier,
            "task_id_b24": 10_000 + n % 500,
            "comment": "bench",
            "items": [line, {**line, "sku": "SKU-X"}],
        }
        return post("/api/v1/returns", courier, body, tokens)

    return {"order_create": order, "return_create": ret}


class Sessions:
    """Sessions started on the bench database so far, read over one
    connection of its own (so reading adds none)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: Any = None

    async def __aenter__(self) -> Sessions:
        import asyncpg

        self.conn = await asyncpg.connect(asyncpg_dsn(self.url))
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.conn.close()

    async def count(self) -> int:
        # A backend reports its session at its first idle moment (or exit),
        # at most a second late.
        await asyncio.sleep(1.1)
        value = await self.conn.fetchval(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        )
        return int(value)

    async def phase(self, port: int, clients: int, duration: float, build: Build) -> dict[str, Any]:
        """``run_phase``'s summary with the connections opened during it."""
        before = await self.count()
        summary = (await run_phase(port, clients, duration, build)).summary()
        summary["connections_opened"] = await self.count() - before
        return summary


def ok(phase: dict[str, Any]) -> int:
    return sum(v for k, v in phase["statuses"].items() if k.startswith("2"))


def errors(phase: dict[str, Any]) -> int:
    return phase["requests"] - ok(phase) + phase["transport_errors"]


def verdict(results: dict[str, Any], creates: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    c10 = results["c10"]
    lists = {
        name: c10[name]["p95_ms"] <= LIST_P95_MS and c10[name]["throughput_rps"] >= LIST_RPS
        for name in LISTS
    }
    reads = {name: c10[name]["p95_ms"] < READ_P95_MS for name in READS}
    c200 = {
        name: errors(p) == 0 and p["p99_ms"] is not None and p["p99_ms"] <= C200_P99_MS
        for name, p in results["c200"].items()
        if name != "health"
    }
    order_rps = [p["throughput_rps"] for p in creates["order_create"]]
    return_rps = [p["throughput_rps"] for p in creates["return_create"]]
    ratio = sum(order_rps) / sum(return_rps) if sum(return_rps) else None
    return {
        "lists_p95_and_rps": lists,
        "single_reads_p95": reads,
        "c200_no_errors_p99": c200,
        "order_vs_return_create_rps": round(ratio, 3) if ratio else None,
        "order_create_within_10pct": bool(ratio and ratio >= 1 - CREATE_WITHIN),
    }


async def against(
    rev: str, url: str, tmp: Path, phases: dict[str, Build], duration: float, rounds: int
) -> dict[str, Any]:
    """The read phases at 10 clients, this tree's API and ``rev``'s taking turns."""
    builds = {"health": health_request, **phases}
    runs: dict[str, dict[str, list[tuple[float, float, float]]]] = {
        side: {name: [] for name in builds} for side in ("this", "rev")
    }
    with checkout(rev) as tree, ExitStack() as stack:
        apis = {
            "this": stack.enter_context(pinned_api_process(url, tmp, onec_url=ONEC_URL)),
            "rev": stack.enter_context(
                pinned_api_process(url, tmp, src=tree / "src", onec_url=ONEC_URL)
            ),
        }
        for port, _ in apis.values():
            for build in phases.values():
                await run_phase(port, 10, 0.5, build)
        for round_no in range(rounds):
            # Each side goes first in every other round.
            sides = ["this", "rev"] if round_no % 2 == 0 else ["rev", "this"]
            for name, build in builds.items():
                for side in sides:
                    port, proc = apis[side]
                    used = cpu_seconds(proc.pid)
                    phase = (await run_phase(port, 10, duration, build)).summary()
                    used = cpu_seconds(proc.pid) - used
                    per_request = used * 1e6 / max(phase["requests"], 1)
                    runs[side][name].append(
                        (per_request, phase["throughput_rps"], phase["p95_ms"] or 0.0)
                    )
        pool: dict[str, dict[str, Any]] = {side: {} for side in apis}
        async with Sessions(url) as sessions:
            for side, (port, _) in apis.items():
                for clients in (20, 200):
                    pool[side][f"c{clients}"] = await sessions.phase(
                        port, clients, duration, phases["return_read"]
                    )
    out: dict[str, Any] = {"rev": rev, "rounds": rounds, "seconds_per_turn": duration}
    for name in builds:
        figures = {
            side: {
                "cpu_us_per_request": round(statistics.median(r[0] for r in runs[side][name])),
                "throughput_rps": round(statistics.median(r[1] for r in runs[side][name]), 1),
                "p95_ms": round(statistics.median(r[2] for r in runs[side][name]), 2),
            }
            for side in runs
        }
        ratio = figures["this"]["cpu_us_per_request"] / figures["rev"]["cpu_us_per_request"]
        out[name] = {**figures, "cpu_ratio": round(ratio, 3)}
    out["pool"] = pool
    return out


async def main(
    rows: int, events: int, duration: float, rounds: int, rev: str | None = None
) -> dict[str, Any]:
    rng = random.Random(19)
    year = Year(rows, COURIERS, events)
    with throwaway_postgres() as (url, tmp):
        started = time.perf_counter()
        await prepare_database(url, {c: 5000 + n for n, c in enumerate(COURIERS)})
        timings = await load(url, year)
        timings["total_s"] = round(time.perf_counter() - started, 1)
        deep = await deep_requests(url, rows, rng)
        phases = read_phases(year, deep, rng)
        writes = create_phases()
        results: dict[str, dict[str, Any]] = {"c10": {}, "c200": {}}
        creates: dict[str, list[dict[str, Any]]] = {name: [] for name in writes}
        async with Sessions(url) as sessions:
            with pinned_api(url, tmp, onec_url=ONEC_URL) as port:
                for build in (*phases.values(), *writes.values()):
                    await run_phase(port, 10, 0.5, build)  # warm-up: pool, caches, plans
                for clients, key in ((10, "c10"), (200, "c200")):
                    health = await run_phase(port, clients, duration, health_request)
                    results[key]["health"] = health.summary()
                    for name, build in phases.items():
                        results[key][name] = await sessions.phase(port, clients, duration, build)
                for _ in range(rounds):
                    for name, build in writes.items():
                        creates[name].append((await run_phase(port, 10, duration, build)).summary())
                creates_c200 = {
                    name: await sessions.phase(port, 200, duration, build)
                    for name, build in writes.items()
                }
        compared = None if rev is None else await against(rev, url, tmp, phases, duration, rounds)
    results["c200"].update(creates_c200)
    return {
        "benchmark": "reads",
        "engine": "postgresql",
        "api_processes": 1,
        "pinned": can_pin(SERVER_CORE),
        "cursors": cursor_codecs() is not None,
        "data": {
            "returns": rows,
            "instant_orders": rows,
            "task_events": year.history_rows(),
            "couriers": len(COURIERS),
            "load_s": timings,
        },
        "results": results,
        "creates_c10": creates,
        "goal": verdict(results, creates),
        **({} if compared is None else {"against": compared}),
    }


if __name__ == "__main__":
    parser = arg_parser(__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="returns, and orders")
    parser.add_argument("--events", type=int, default=5, help="history rows per order")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per phase (≤ 15)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating create rounds (and --against rounds)"
    )
    parser.add_argument("--against", metavar="REV", help="also compare reads with git rev REV")
    args = parser.parse_args()
    pin_self()
    duration = min(max(args.duration, 1.0), 15.0)
    print_json(asyncio.run(main(args.rows, args.events, duration, args.rounds, args.against)))
